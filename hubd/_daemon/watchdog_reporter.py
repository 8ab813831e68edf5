"""The daemon's progress reporter: each step, build line and pull event of a long pass is
also a heartbeat for systemd's watchdog (and, before READY=1, more start-up time), and the
place where that pass stops when a stop signal came (stopguard.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from hubd._daemon.sdnotify import Heartbeat, Notifier
from hubd._daemon.stopguard import StopGuard
from hubd.stack.progress import LogReporter, ProgressFeed, PullProgress
from hubd.timing import Timing


class WatchdogReporter(LogReporter):
    """Progress lines for the log, and on each a heartbeat (and, before READY=1, more start-up
    time): a long first pull or build is progress, not a hung daemon. Each sign of progress is
    also where a long pass stops when a stop signal came."""

    def __init__(
        self,
        notifier: Notifier,
        timing: Timing,
        heartbeat: Heartbeat,
        guard: StopGuard,
        feed: ProgressFeed | None = None,
    ) -> None:
        super().__init__(timing, feed=feed.add if feed is not None else None)
        self.notifier = notifier
        self.extension_s = timing.start_timeout_extension_s
        self.heartbeat = heartbeat
        self.guard = guard
        self.starting = True
        # The supervisor's loop runs on the thread that builds the daemon. Backups, upgrades and
        # control requests report through this reporter from threads of their own: their
        # progress neither proves the loop alive nor may it unwind them with ShutdownRequested.
        self._loop_thread = threading.current_thread()

    def _progress(self) -> None:
        if threading.current_thread() is not self._loop_thread:
            return
        self.guard.cancel_if_stopping()
        if self.starting:
            self.notifier.extend_start_timeout(self.extension_s)
        self.heartbeat.beat()

    def step(self, message: str) -> None:
        self._progress()
        super().step(message)

    def build_output(self, line: str) -> None:
        self._progress()
        super().build_output(line)

    @contextlib.contextmanager
    def pulling(self, image: str) -> Iterator[PullProgress]:
        progress = self._progress
        with super().pulling(image) as inner:

            class _Beating:
                def update(self, event: dict[str, Any]) -> None:
                    progress()
                    inner.update(event)

            yield _Beating()


__all__ = ["WatchdogReporter"]
