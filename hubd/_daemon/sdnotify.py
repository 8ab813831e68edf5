"""systemd's readiness and watchdog protocol, without extra dependencies.

One AF_UNIX datagram of KEY=VALUE lines to $NOTIFY_SOCKET (a leading '@' is an abstract
socket). Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s = self._watchdog_interval(environ)

    @staticmethod
    def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            # Ping at half the deadline, as sd_watchdog_enabled(3) advises.
            return int(usec) / 1_000_000 / 2
        except ValueError:
            return None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str) -> None:
        if not self.address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message, self.address)
            except OSError as exc:
                log.debug("sd_notify to %r failed: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.send(READY="1", STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def extend_start_timeout(self, seconds: float) -> None:
        """Ask for more start-up time: a first start may pull gigabytes before READY=1."""
        self.send(EXTEND_TIMEOUT_USEC=str(int(seconds * 1_000_000)))

    def stopping(self) -> None:
        self.send(STOPPING="1", STATUS="stopping")

    def watchdog(self) -> None:
        self.send(WATCHDOG="1")


class Heartbeat:
    """systemd's watchdog, fed only while the supervisor makes progress.

    The loop calls `beat()` after each pass, and long work (pull and build progress) calls it
    too. A thread sends WATCHDOG=1 every half watchdog period, but only while the last beat
    is fresh: a loop stuck for good stops the pings and systemd restarts hubd, while a loop
    busy with a slow pull keeps them coming.
    """

    def __init__(self, notifier: Notifier, clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.clock = clock
        self.interval_s = notifier.watchdog_interval_s
        self.last_beat = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fresh(self) -> bool:
        # A beat within one ping interval: the watchdog period is twice that, so systemd
        # still gets its ping before a loop stalled at the very end of the window is killed.
        return self.interval_s is not None and self.clock() - self.last_beat <= self.interval_s

    def beat(self) -> None:
        self.last_beat = self.clock()

    def tick(self) -> bool:
        """Ping if the loop is alive; returns whether a ping went out."""
        if not self.fresh:
            return False
        self.notifier.watchdog()
        return True

    def start(self) -> None:
        if self.interval_s is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="hubd-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.interval_s is not None
        # Pinging twice per interval keeps a ping within each interval despite jitter.
        while not self._stop.wait(self.interval_s / 2):
            if not self.tick():
                log.warning(
                    "the supervisor loop made no progress for %.0f s: not feeding systemd's "
                    "watchdog",
                    self.clock() - self.last_beat,
                )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
