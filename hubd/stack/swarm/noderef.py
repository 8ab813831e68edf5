"""A Swarm node object as the owner names it on the command line (placement.resolve's rules:
its hostname, its id or a unique prefix), for code that acts on the node itself."""

from __future__ import annotations

from typing import Any

from hubd.stack.swarm.homes import node_hostname
from hubd.stack.swarm.placement import resolve
from hubd.status import NodeView


def resolve_node(client: Any, ref: str) -> Any:
    """The node `ref` names; else one clear line listing the nodes there are."""
    nodes = {node.id: node for node in client.nodes.list()}
    views = [NodeView(id=ident, hostname=node_hostname(node)) for ident, node in nodes.items()]
    return nodes[resolve(views, ref).id]
