"""A thread that has the tray ask the daemon for its state every few seconds.

Polling, not a push channel: the control API is request/response, and a local Unix-socket
request every two seconds costs nothing. `poke()` polls at once (after the tray changed
something), so the menu follows a click without waiting for the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, poll: Callable[[], None], interval_s: float) -> None:
        self._poll = poll
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # start() and stop() may race (a tray quit while it is still coming up).
        self._lifecycle = threading.Lock()

    def start(self) -> None:
        with self._lifecycle:
            if self._stopping.is_set() or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="hubd-tray-poll", daemon=True)
            self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._lifecycle:
            self._stopping.set()
            self._wake.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._poll()
            except Exception:  # one bad poll must not leave the icon frozen for good
                log.exception("tray: poll failed")
            self._wake.wait(self._interval_s)
