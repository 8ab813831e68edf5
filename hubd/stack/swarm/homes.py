"""Each person's home node: the node that holds their volume, recorded as a Swarm node label.

A person's server only ever starts on their home node (a placement constraint the hub's
spawner adds), because their files are there and nowhere else. The label is
`io.hubd.home.<stack>.<username>=true` on exactly one node; a person without one lives on the
manager, where every volume made before the Swarm existed is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from docker.errors import APIError

from hubd.errors import NodeError
from hubd.stack.hub_image.swarm_placement import node_labels, node_name
from hubd.stack.naming import StackNames

HOME_LABEL_PREFIX = "io.hubd.home."
# Labels an owner gives a node (`hubd node label NODE gpu`) for per-image placement.
NODE_LABEL_PREFIX = "io.hubd.node."


def home_label(names: StackNames, username: str) -> str:
    return f"{HOME_LABEL_PREFIX}{names.stack}.{username}"


def node_label(label: str) -> str:
    return f"{NODE_LABEL_PREFIX}{label}"


def swarm_manager(client: Any) -> bool:
    """Is this engine a Swarm manager (hubd's engine after the first `hubd node add`)?"""
    swarm = client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def local_node_id(client: Any) -> str:
    return str((client.info().get("Swarm") or {}).get("NodeID") or "")


def manager_node_id(client: Any) -> str | None:
    """This engine's node when it is a Swarm manager (`hubd node add` made it one): then
    people's servers are Swarm services. Ask each time, as `node add` changes it."""
    return local_node_id(client) if swarm_manager(client) else None


def homes(client: Any, names: StackNames) -> dict[str, str]:
    """username -> id of their home node, for everyone who has a home label."""
    return homes_in([node.attrs for node in client.nodes.list()], names)


def homes_in(nodes: Iterable[dict[str, Any]], names: StackNames) -> dict[str, str]:
    """The same, from a listing of nodes (their attributes) already made."""
    prefix = f"{HOME_LABEL_PREFIX}{names.stack}."
    found: dict[str, str] = {}
    for attrs in nodes:
        for key, value in node_labels(attrs).items():
            if key.startswith(prefix) and value == "true":
                found[key[len(prefix) :]] = str(attrs.get("ID") or "")
    return found


def homes_elsewhere(client: Any, names: StackNames) -> dict[str, str]:
    """username -> hostname of their home node, for people whose files are on another node
    than hubd's engine (which cannot reach them: backups and deletions say so)."""
    if not swarm_manager(client):
        return {}
    here = local_node_id(client)
    nodes = list(client.nodes.list())
    hostnames = {node.id: node_hostname(node) for node in nodes}
    found = homes_in([node.attrs for node in nodes], names)
    return {user: hostnames.get(node, node[:12]) for user, node in found.items() if node != here}


def node_hostname(node: Any) -> str:
    """A node object's hostname (else the start of its id)."""
    return node_name(node.attrs)


def home_of(client: Any, names: StackNames, username: str) -> str:
    """The id of `username`'s home node: their label, else the manager's own node."""
    return homes(client, names).get(username) or local_node_id(client)


def set_home(client: Any, names: StackNames, username: str, node_id: str) -> None:
    """Make `node_id` the one home of `username` (the label moves off any other node)."""
    key = home_label(names, username)
    target = client.nodes.get(node_id)
    update_labels(target, add={key: "true"})
    for node in client.nodes.list():
        if node.id != target.id and key in (node.attrs.get("Spec", {}).get("Labels") or {}):
            update_labels(node, remove=(key,))


def clear_home(client: Any, names: StackNames, username: str) -> None:
    key = home_label(names, username)
    for node in client.nodes.list():
        if key in (node.attrs.get("Spec", {}).get("Labels") or {}):
            update_labels(node, remove=(key,))


def update_labels(
    node: Any, add: dict[str, str] | None = None, remove: tuple[str, ...] = ()
) -> None:
    """Change a node's labels."""

    def edit(spec: dict[str, Any]) -> dict[str, Any]:
        labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k not in remove}
        return {**spec, "Labels": {**labels, **(add or {})}}

    update_spec(node, edit)


def update_spec(node: Any, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Change a node's spec (its labels, its availability) from its newest version; a
    concurrent change (version mismatch) is retried once."""
    for attempt in range(2):
        node.reload()
        try:
            node.update(edit(dict(node.attrs["Spec"])))
            return
        except APIError as exc:
            if attempt or "update out of sequence" not in str(exc):
                raise NodeError(
                    f"could not change node {node.id[:12]}: {exc.explanation or exc}"
                ) from None
