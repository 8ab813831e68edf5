"""Servers lost with a Swarm node start again when the node is back.

A node that goes away (switched off, cable out, its engine stopped) takes the servers running
there with it; their people's files stay on it, so nothing can start elsewhere. The hub only
sees the server stop. This remembers who was running on each node when it was last seen
ready, and once it is ready again says whom to start: the person finds their JupyterLab back
where they left it (files intact; kernels restart, as after any stop).

When the node goes away, its servers are stopped in the hub at once: the hub would notice
only at its next poll (30 s), and meanwhile the person's browser gets proxy errors instead of
the spawn page's "Your files are on node2, which is not reachable right now".

Pure bookkeeping: the daemon feeds it one sighting of the nodes per pass, asks the hub to stop
and start the servers it names, and reports each accepted start (`observe` -> `started`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class NodeSighting(NamedTuple):
    ready: bool
    # People whose server is running on the node now.
    running: frozenset[str]


class Actions(NamedTuple):
    stop: list[str]  # their node just went away: stop the server in the hub
    start: list[str]  # their node is back: start the server again


@dataclass
class LostServers:
    # How long to keep trying after the node is back (seconds): the hub may take a poll
    # interval to notice that the old server is gone before it accepts a new start.
    window_s: float
    _last_running: dict[str, frozenset[str]] = field(default_factory=dict)
    _down: dict[str, frozenset[str]] = field(default_factory=dict)
    _waiting: dict[str, float] = field(default_factory=dict)

    def observe(self, nodes: Mapping[str, NodeSighting], now_s: float) -> Actions:
        """Whose server to stop and whose to start now, given this pass's nodes."""
        running_anywhere: set[str] = set()
        stop: set[str] = set()
        for node_id, seen in nodes.items():
            if not seen.ready:
                if node_id not in self._down:
                    # Who was there when it was last seen ready (once per absence).
                    self._down[node_id] = self._last_running.get(node_id, frozenset())
                    stop |= self._down[node_id]
                continue
            # The Swarm keeps listing tasks on a node it cannot hear from as running: only a
            # ready node's count.
            running_anywhere |= seen.running
            for person in self._down.pop(node_id, frozenset()):
                self._waiting[person] = now_s + self.window_s
            self._last_running[node_id] = seen.running
        for gone in set(self._last_running) - set(nodes):
            # A node removed from the Swarm takes nobody's server back.
            self._last_running.pop(gone, None)
            self._down.pop(gone, None)
        for person in list(self._waiting):
            if person in running_anywhere or self._waiting[person] < now_s:
                del self._waiting[person]
        return Actions(stop=sorted(stop), start=sorted(self._waiting))

    def started(self, person: str) -> None:
        """The hub accepted the start: nothing more to do for them."""
        self._waiting.pop(person, None)

    def lost(self) -> dict[str, frozenset[str]]:
        """node id -> people whose server went away with it (for status and the tray)."""
        return {node: people for node, people in self._down.items() if people}
