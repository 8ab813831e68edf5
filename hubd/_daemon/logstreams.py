"""The logs that `hubd logs -f` follows through the daemon, as `routes.Stream`s: the hub's
(the engine's log stream of its container, across its restarts) and hubd's own (its log
file, across its rotation)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubd._daemon.supervisor import ENGINE_ERRORS
from hubd.errors import DockerUnavailable, HubdError, NoHubContainer
from hubd.paths import LogFileFollower

if TYPE_CHECKING:
    from hubd.stack import Stack

log = logging.getLogger(__name__)

STATUS_ERRORS: tuple[type[BaseException], ...] = (HubdError, *ENGINE_ERRORS)


class HubLogStream:
    """The hub container's log as text, followed across the hub's restarts: when the
    engine's stream ends (the container stopped, or the engine restarted) it says so in one
    line and waits for the hub to run again (a restart, an upgrade's new container, `hubd
    up`), then goes on from that moment, as `journalctl -f` follows a service. A hub the
    daemon wants but has no container of at the start (it is recreating it, after a config
    change or an upgrade) is waited for the same way; one nobody wants is refused at once.
    `close()` ends it from any thread."""

    STOPPED = (
        "-- the hub's log stream ended (the hub stopped, or Docker restarted); "
        "following on when the hub runs again --\n"
    )
    NOT_YET = "-- the hub is being created; following on when it runs --\n"

    def __init__(
        self,
        stack: Callable[[], Stack | None],
        tail: int,
        poll_s: float,
        hub_wanted: Callable[[], bool] = lambda: False,
    ) -> None:
        self._stack = stack
        self._poll_s = poll_s
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._opened_at = time.time()
        # Opened now: no engine, or no hub nobody wants, is an error of the request.
        try:
            self._chunks: Any = _current(stack).hub.log_stream(tail)
        except NoHubContainer:
            if not hub_wanted():
                raise
            self._chunks = None

    def __iter__(self) -> Iterator[str]:
        if self._chunks is None:
            yield self.NOT_YET
            if not self._resume(self._opened_at):
                return
        while not self._closed.is_set():
            try:
                for chunk in self._chunks:
                    yield bytes(chunk).decode(errors="replace")
            except STATUS_ERRORS as exc:  # the engine went away mid-stream (or we closed it)
                log.debug("following the hub's log: the stream broke: %s", exc)
            if self._closed.is_set():
                return
            stopped_at = time.time()
            yield self.STOPPED
            if not self._resume(stopped_at):
                return

    def _resume(self, since: float) -> bool:
        """Wait for the hub's next run and follow its log from `since`; False once closed."""
        chunks = self._next_start(since)
        with self._lock:
            if self._closed.is_set():
                if chunks is not None:
                    chunks.close()
                return False
            self._chunks = chunks
            return True

    def _next_start(self, since: float) -> Any:
        """The log of the hub's next run, from `since` (None once closed)."""
        while not self._closed.wait(self._poll_s):
            try:
                stack = self._stack()
                if stack is not None and stack.hub.state().running:
                    return stack.hub.log_stream(None, since=since)
            except STATUS_ERRORS as exc:  # the engine is away, or the hub went again
                log.debug("following the hub's log: %s", exc)
        return None

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            if self._chunks is not None:
                self._chunks.close()


def _current(stack: Callable[[], Stack | None]) -> Stack:
    found = stack()
    if found is None:
        raise DockerUnavailable("the Docker engine is not connected")
    return found


class LogFileStream:
    """hubd's log file: its last `tail` lines, then the lines added, across its rotation."""

    def __init__(self, path: Path, tail: int, poll_s: float) -> None:
        # Opened now: a log hubd may not read is an error of the request, not of the stream.
        self._file = LogFileFollower(path, tail)
        self._poll_s = poll_s
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[str]:
        if self._file.last:
            yield "".join(f"{line}\n" for line in self._file.last)
        try:
            yield from self._file.follow(self._poll_s, self._stopped)
        finally:
            self._file.close()

    def close(self) -> None:
        self._stopped.set()
