"""Warn once per distinct failure; repeats go to debug, so a crash loop does not flood logs."""

from __future__ import annotations

import logging
import threading


class WarnOnce:
    """Thread-safe: the mDNS worker, its guard thread and zeroconf's callbacks share one."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warn(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            level = logging.DEBUG if key in self._seen else logging.WARNING
            self._seen.add(key)
        self.logger.log(level, message, *args)

    def forget(self) -> None:
        """After a recovery, the next failure is news again."""
        with self._lock:
            self._seen.clear()
