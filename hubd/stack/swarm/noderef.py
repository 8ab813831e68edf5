"""A node as the owner names it on the command line: its hostname, its id or a unique prefix."""

from __future__ import annotations

from typing import Any

from hubd.errors import UsageError


def node_hostname(node: Any) -> str:
    return str(((node.attrs.get("Description") or {}).get("Hostname")) or node.id[:12])


def resolve_node(client: Any, ref: str) -> Any:
    """The Swarm node `ref` names (hostname, full id or unique id prefix); else one clear line
    listing the nodes there are."""
    nodes = list(client.nodes.list())
    exact = [n for n in nodes if n.id == ref or node_hostname(n) == ref]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [n for n in nodes if ref and n.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(f"{node_hostname(n)} ({n.id[:12]})" for n in nodes)) or "none"
    if matches:
        raise UsageError(f"{ref!r} names more than one node; say which: {known}")
    raise UsageError(f"there is no node {ref!r}; the nodes are: {known}")
