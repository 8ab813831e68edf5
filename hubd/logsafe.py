"""Warn once per distinct failure; repeats go to debug, so a crash loop does not flood logs."""

from __future__ import annotations

import logging


class WarnOnce:
    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._seen: set[str] = set()

    def warn(self, key: str, message: str, *args: object) -> None:
        level = logging.DEBUG if key in self._seen else logging.WARNING
        self._seen.add(key)
        self.logger.log(level, message, *args)

    def forget(self) -> None:
        """After a recovery, the next failure is news again."""
        self._seen.clear()
