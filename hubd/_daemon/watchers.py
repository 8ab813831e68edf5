"""Threads that watch the engine and the hub, record what they see and wake the loop.

- EventWatcher follows the engine's event stream for the hub, proxies and front, so a death
  (exit, OOM kill) is noticed at once. The stream simply ends when the engine dies; that is
  reported as "engine lost".
- Monitor pings the engine (a hung engine never ends the stream), probes the proxy and, through
  it, /hub/health; N failed probes in a row mean the proxy, or else the hub, hangs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import requests
from docker.errors import DockerException

from hubd.stack.naming import StackNames
from hubd.timing import Timing

log = logging.getLogger("hubd.watch")

HUB_EVENTS = ["die", "oom", "kill", "stop", "pause", "start", "destroy"]


class EventWatcher:
    def __init__(
        self, names: StackNames, on_event: Callable[[str], None], on_stream_end: Callable[[], None]
    ) -> None:
        self.names = names
        self.on_event = on_event
        self.on_stream_end = on_stream_end
        self.last_event_time: int | None = None
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._closing = False

    def follow(self, client: docker.DockerClient) -> None:
        """Start following `client`'s events, replacing any earlier stream."""
        self.close()
        self._closing = False
        since = self.last_event_time or int(time.time())
        self._stream = client.events(
            decode=True,
            since=since,
            filters={
                "type": "container",
                "event": HUB_EVENTS,
                # One value per key is ANDed, several are ORed: the stack's hub, proxies or front.
                "container": [
                    self.names.hub_container,
                    self.names.proxy_container,
                    self.names.proxy_standby_container,
                    self.names.front_container,
                ],
                **self.names.filters(),
            },
        )
        self._thread = threading.Thread(
            target=self._run, args=(self._stream,), name="hubd-events", daemon=True
        )
        self._thread.start()

    def _run(self, stream: Any) -> None:
        try:
            for event in stream:
                self.last_event_time = int(event.get("time", time.time()))
                action = str(event.get("Action") or event.get("status", ""))
                log.debug("hub container event: %s", action)
                self.on_event(action)
        except (DockerException, requests.exceptions.RequestException, OSError, ValueError) as exc:
            log.debug("event stream failed: %s", exc)
        if not self._closing:
            self.on_stream_end()

    def close(self) -> None:
        self._closing = True
        stream, self._stream = self._stream, None
        if stream is not None:
            # The connection may already be gone; closing is best effort.
            with contextlib.suppress(Exception):
                stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None


class Monitor:
    """Engine pings and hub health probes on one timer thread."""

    def __init__(
        self,
        timing: Timing,
        *,
        ping: Callable[[], bool],
        probe: Callable[[], bool | None],
        on_engine_lost: Callable[[], None],
        on_hub_hung: Callable[[], None],
        probe_proxy: Callable[[], bool | None] = lambda: None,
        on_proxy_hung: Callable[[], None] = lambda: None,
    ) -> None:
        self.timing = timing
        self.ping = ping
        self.probe = probe  # True healthy, False failed, None: not expected to run now
        self.probe_proxy = probe_proxy  # the same, for the proxy
        self.on_engine_lost = on_engine_lost
        self.on_hub_hung = on_hub_hung
        self.on_proxy_hung = on_proxy_hung
        self.failures = 0
        self.proxy_failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hubd-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.timing.health_interval_s):
            self.tick()

    def tick(self) -> None:
        if not self.ping():
            self.failures = self.proxy_failures = 0
            self.on_engine_lost()
            return
        if self.probe_proxy() is False:
            # The hub's probe goes through the proxy: it would only repeat this failure.
            self.failures = 0
            self.proxy_failures += 1
            log.debug("proxy probe failed (%d in a row)", self.proxy_failures)
            if self.proxy_failures >= self.timing.health_failures:
                self.proxy_failures = 0
                self.on_proxy_hung()
            return
        self.proxy_failures = 0
        healthy = self.probe()
        if healthy is None or healthy:
            self.failures = 0
            return
        self.failures += 1
        log.debug("health probe failed (%d in a row)", self.failures)
        if self.failures >= self.timing.health_failures:
            self.failures = 0
            self.on_hub_hung()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timing.health_interval_s + 5)
