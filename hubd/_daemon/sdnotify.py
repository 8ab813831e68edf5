"""systemd's readiness and watchdog protocol, without extra dependencies.

One AF_UNIX datagram of KEY=VALUE lines to $NOTIFY_SOCKET (a leading '@' is an abstract
socket). Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s = self._watchdog_interval(environ)
        self._last_watchdog = 0.0

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

    def watchdog_if_due(self) -> None:
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic()
        if now - self._last_watchdog >= self.watchdog_interval_s:
            self._last_watchdog = now
            self.send(WATCHDOG="1")
