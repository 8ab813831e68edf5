"""The shutdown promise: a stop signal is honoured within the grace period whatever the loop is
doing (a pull, a build, a call to a frozen engine), and a second one ends hubd at once.

Signal handlers only count signals; this thread watches the count. The loop itself stops at
its next chance (long work checks `cancel_if_stopping()` at each sign of progress).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("hubd")

# The exit code when the graceful stop did not finish.
EXIT_FORCED = 1


class ShutdownRequested(BaseException):
    """Raised from progress callbacks to unwind a long pass when a stop was asked for.

    A BaseException, like KeyboardInterrupt: no `except Exception` on the way may swallow it.
    """


class StopGuard:
    def __init__(
        self,
        signals_seen: Callable[[], int],
        grace_s: float,
        exit_now: Callable[[int], None] = os._exit,
        poll_s: float = 0.05,
        idle_poll_s: float | None = None,
    ) -> None:
        self.signals_seen = signals_seen
        self.grace_s = grace_s
        self.exit_now = exit_now
        self.poll_s = poll_s
        # Before any signal, looked for less often (an idle daemon's wakeups cost CPU).
        self.idle_poll_s = poll_s if idle_poll_s is None else idle_poll_s
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hubd-stop-guard", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel_if_stopping(self) -> None:
        if self.signals_seen():
            raise ShutdownRequested

    def _run(self) -> None:
        while not self.signals_seen():
            if self.finished.wait(self.idle_poll_s):
                return
        deadline = time.monotonic() + self.grace_s
        while not self.finished.wait(self.poll_s):
            if self.signals_seen() >= 2:
                log.error("second stop signal: exiting now")
                self.exit_now(EXIT_FORCED)
                return
            if time.monotonic() >= deadline:
                log.error("shutdown took longer than %.0f s: exiting now", self.grace_s)
                self.exit_now(EXIT_FORCED)
                return

    def done(self) -> None:
        """The graceful stop finished: nothing to force."""
        self.finished.set()
