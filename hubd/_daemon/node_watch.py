"""On a Swarm: servers lost with a node are stopped in the hub at once and started again
when the node is back (lost_servers.py decides whom; this asks the engine and the hub).

Runs in the daemon's loop, between reconcile passes, at most every `node_watch_interval_s`;
on one machine (no Swarm) one `docker info` per interval and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hubd._daemon.lost_servers import LostServers, NodeSighting
from hubd.timing import Timing

if TYPE_CHECKING:
    from hubd.stack import Stack

log = logging.getLogger(__name__)


class NodeWatch:
    def __init__(self, timing: Timing, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = timing.node_watch_interval_s
        self.lost = LostServers(timing.lost_server_restart_window_s)
        self._clock = clock
        self._next_s = 0.0
        # What each person picked on the spawn form, kept from the stop for the start.
        self._options: dict[str, dict[str, Any]] = {}

    def tick(self, stack: Stack | None, hub_running: bool) -> float:
        """One look if it is time; returns the seconds until the next."""
        now = self._clock()
        if now < self._next_s:
            return self._next_s - now
        self._next_s = now + self.interval_s
        if stack is None or not hub_running:
            return self.interval_s
        try:
            self._look(stack, now)
        except Exception as exc:  # hubd's, docker-py's, requests' errors: one line, next time
            log.warning("could not look after the Swarm's nodes: %s", exc)
        return self.interval_s

    def _look(self, stack: Stack, now: float) -> None:
        views = stack.nodes.views()
        if not views:
            return
        actions = self.lost.observe(
            {v.id: NodeSighting(v.ready, frozenset(v.running)) for v in views}, now
        )
        # Options of people no longer waiting for their node (started, or given up on) go.
        waiting = set(actions.start).union(*self.lost.lost().values())
        self._options = {p: o for p, o in self._options.items() if p in waiting}
        if not (actions.stop or actions.start):
            return
        api = stack.hub_api()
        for person in actions.stop:
            self._options[person] = api.server_options(person)
            api.stop_server(person)
            log.info("%s's server went away with its node: stopped in the hub", person)
        for person in actions.start:
            if api.start_server(person, self._options.get(person)):
                self.lost.started(person)
                self._options.pop(person, None)
                log.info("%s's node is back: starting their server again", person)
