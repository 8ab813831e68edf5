"""One background thread that runs the tray's menu actions in the order they were clicked.

Not a ThreadPoolExecutor: its threads are joined when the interpreter exits, so an action
waiting on a daemon that hangs would keep a quit tray alive. This thread is a daemon thread:
quitting the tray never waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str = "hubd-tray-action") -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        if not self._closed:
            self._jobs.put(job)

    def close(self) -> None:
        """No more jobs; the one running (if any) may finish on its own."""
        self._closed = True
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # jobs report their own errors; this only keeps the thread
                log.exception("tray: action failed")
