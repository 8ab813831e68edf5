"""The daemon's HTTPS leaf, kept fitting: now and then a leaf that no longer fits the hub's
names and addresses (a new address, an mDNS rename, its end near) is replaced and handed to
the running proxy, which keeps every open connection (hubd/stack/proxy_tls.py, docs/https.md).

`refresh_once()` is one check; `tick()`, from the daemon's loop, runs it at most every
`tls_check_interval_s`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from docker.errors import DockerException

from hubd.errors import HubdError
from hubd.logsafe import WarnOnce
from hubd.timing import Timing

log = logging.getLogger("hubd")


class TlsHolder(Protocol):
    """What the refresh uses of a `Stack`."""

    mdns_hostnames: tuple[str, ...]

    def refresh_tls(self) -> bool: ...


class TlsRefresh:
    def __init__(
        self,
        timing: Timing,
        *,
        stack: Callable[[], TlsHolder | None],
        lock: AbstractContextManager[object],
        warn: WarnOnce,
        mdns_hostname: Callable[[], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = timing.tls_check_interval_s
        self._stack = stack
        self._lock = lock  # the supervisor's: not during a pass, an upgrade or a move
        self._warn = warn
        self._mdns_hostname = mdns_hostname
        self._clock = clock
        self._next_s = 0.0

    def tick(self) -> None:
        """From the daemon's loop: one check when it is due and there is a stack."""
        now = self._clock()
        stack = self._stack()
        if stack is None or now < self._next_s:
            return
        self._next_s = now + self.interval_s
        self.refresh_once(stack)

    def refresh_once(self, stack: TlsHolder) -> bool:
        """The leaf made to fit the name mDNS claimed now; True when the proxy got a new one.
        A failure is a warning: the current leaf stays, and the next check tries again."""
        hostname = self._mdns_hostname()
        stack.mdns_hostnames = (hostname,) if hostname else ()
        try:
            with self._lock:
                return stack.refresh_tls()
        except (HubdError, DockerException, OSError) as exc:
            self._warn.warn("tls", "could not renew the hub's certificate: %s", exc)
            return False


__all__ = ["TlsHolder", "TlsRefresh"]
