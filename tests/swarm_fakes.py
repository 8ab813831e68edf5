"""Small stand-ins for docker-py's Swarm nodes, for the pure logic around them (names, homes).
Real Swarm behaviour is tested on the 2-node lab (tests/integration/swarm_lab.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeNode:
    id: str
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)
    state: str = "ready"
    availability: str = "active"

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            "ID": self.id,  # as the engine's node listing has it
            "Description": {"Hostname": self.hostname},
            "Spec": {"Labels": dict(self.labels), "Availability": self.availability},
            "Status": {"State": self.state},
        }


class FakeNodes:
    def __init__(self, nodes: list[FakeNode]) -> None:
        self.nodes = nodes

    def list(self) -> list[FakeNode]:
        return list(self.nodes)

    def get(self, node_id: str) -> FakeNode:
        return next(n for n in self.nodes if n.id == node_id)


class FakeSwarmClient:
    """`info()` as a Swarm manager's engine, and `nodes`."""

    def __init__(self, nodes: list[FakeNode], local: str) -> None:
        self.nodes = FakeNodes(nodes)
        self.local = local

    def info(self) -> dict[str, Any]:
        return {
            "Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": self.local}
        }
