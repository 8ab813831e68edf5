"""The rules of `hubd node`, pure: what a node looks like to people, which node a name means,
and when a node may be removed or become someone's home. nodes.py asks the engine; these
decide, so every refusal can be checked without a Swarm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hubd.errors import NodeError
from hubd.stack.hub_image.swarm_placement import node_name, node_resources, node_state
from hubd.stack.swarm.homes import NODE_LABEL_PREFIX
from hubd.status import NodeResource, NodeView

SWARM_PORT = 2377
# An owner label becomes part of a node label key (io.hubd.node.<label>) and of the config's
# `image_nodes` entries: short, lowercase, no dots (a dot would read as another level).
_LABEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# "... (10.0.0.2 on eth0 and 192.168.1.5 on wlan0)" in the engine's refusal.
_ADDRESS_ON_RE = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+) on ([\w.@-]+)")


def node_view(
    attrs: Mapping[str, Any],
    homes: Mapping[str, str],
    running: Mapping[str, str],
    local_id: str,
) -> NodeView:
    """One node as `docker node inspect` shows it, with the people living and working there
    (`homes` and `running` map a username to a node id). People without a home label live on
    the manager, so they are not listed here: only labels decide homes."""
    spec = attrs.get("Spec") or {}
    description = attrs.get("Description") or {}
    resources = description.get("Resources") or {}
    node_id = str(attrs.get("ID") or "")
    labels = spec.get("Labels") or {}
    return NodeView(
        id=node_id,
        hostname=node_name(attrs),
        role=str(spec.get("Role") or ""),
        state=node_state(attrs),
        availability=str(spec.get("Availability") or ""),
        address=_address(attrs),
        cpus=round(int(resources.get("NanoCPUs") or 0) / 1e9, 2),
        memory_bytes=int(resources.get("MemoryBytes") or 0),
        resources=tuple(
            NodeResource(kind=kind, count=count)
            for kind, count in sorted(node_resources(attrs).items())
        ),
        labels=tuple(
            sorted(
                key[len(NODE_LABEL_PREFIX) :]
                for key, value in labels.items()
                if key.startswith(NODE_LABEL_PREFIX) and value == "true"
            )
        ),
        homes=tuple(sorted(user for user, node in homes.items() if node == node_id)),
        running=tuple(sorted(user for user, node in running.items() if node == node_id)),
        this_machine=node_id == local_id,
    )


def _address(attrs: Mapping[str, Any]) -> str:
    """The node's address. A manager may report 0.0.0.0 as its own (Engine 20.10); its
    advertised manager address says where the others reach it."""
    address = str((attrs.get("Status") or {}).get("Addr") or "")
    manager = str((attrs.get("ManagerStatus") or {}).get("Addr") or "")
    if address in ("", "0.0.0.0") and manager:
        return manager.rsplit(":", 1)[0]
    return address


def resolve(views: Sequence[NodeView], wanted: str) -> NodeView:
    """The node `wanted` names: a hostname, a full id, or a prefix of exactly one id."""
    if not views:
        raise NodeError(
            "this hub runs on one machine: there are no nodes yet (`hubd node add` adds one)"
        )
    for match in (
        [v for v in views if v.id == wanted],
        [v for v in views if v.hostname == wanted],
        [v for v in views if wanted and v.id.startswith(wanted)],
    ):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise NodeError(
                f"{wanted!r} names {len(match)} nodes ({_known(match)}): use the node's id"
            )
    raise NodeError(f"no node {wanted!r}; the nodes are: {_known(views)}")


def _known(views: Iterable[NodeView]) -> str:
    return ", ".join(f"{v.hostname} ({v.id[:12]})" for v in views)


def removal_problem(node: NodeView) -> str | None:
    """Why `node` cannot leave the hub now, or None when it can."""
    if node.this_machine or node.role == "manager":
        return (
            f"{node.hostname} is a Swarm manager (hubd, the hub and the proxy run on the "
            "manager): it cannot be removed"
        )
    if node.homes:
        people = ", ".join(node.homes)
        return (
            f"{people} {'has' if len(node.homes) == 1 else 'have'} their files on "
            f"{node.hostname}: move them first (`hubd user move NAME --to NODE`)"
        )
    return None


def home_problem(node: NodeView) -> str | None:
    """Why a new account cannot live on `node`, or None when it can."""
    if not node.ready:
        return f"{node.hostname} is {node.state}: a new account's home must be a ready node"
    if node.availability != "active":
        return (
            f"{node.hostname} is set to {node.availability}: a new account's home must be "
            "an active node"
        )
    return None


def roomiest(views: Sequence[NodeView], people: Mapping[str, int]) -> NodeView | None:
    """Where a new account lives when the owner names no node ("where there is room"): the
    ready, active machine with the most memory per person already living there (`people`:
    node id -> how many), hubd's own machine on a tie. Its files then stay there, so the
    choice is made once, when the account is made."""
    usable = [view for view in views if home_problem(view) is None]
    if not usable:
        return None
    return max(usable, key=lambda v: (v.memory_bytes / (1 + people.get(v.id, 0)), v.this_machine))


def check_label(label: str) -> str:
    if not _LABEL_RE.fullmatch(label):
        raise NodeError(
            f"label {label!r}: use lowercase letters, digits, '-' and '_' (at most 64), e.g. gpu"
        )
    return label


def join_command(worker_token: str, manager_address: str) -> str:
    """What the other machine runs to join as a worker (`manager_address`: the manager's
    advertised address, without a port)."""
    host = f"[{manager_address}]" if ":" in manager_address else manager_address
    return f"docker swarm join --token {worker_token} {host}:{SWARM_PORT}"


def advertise_problem(engine_message: str) -> str | None:
    """The engine's refusal to pick an address by itself, as one line, or None for any other
    refusal."""
    if "advertise" not in engine_message or "address" not in engine_message:
        return None
    candidates = _ADDRESS_ON_RE.findall(engine_message)
    found = ", ".join(f"{ip} on {dev}" for ip, dev in candidates)
    return (
        "this machine has several addresses"
        + (f" ({found})" if found else "")
        + ": say which one the other machines reach it on, with --advertise-addr ADDR"
    )
