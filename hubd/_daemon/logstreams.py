"""The logs that `hubd logs -f` follows through the daemon, as `routes.Stream`s: the hub's
(the engine's log stream of its container) and hubd's own (its log file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubd.paths import LogFileFollower


class HubLogStream:
    """The engine's stream of the hub container's log, as text; `close()` ends it from any
    thread (docker-py's CancellableStream shuts its socket down)."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            yield bytes(chunk).decode(errors="replace")

    def close(self) -> None:
        self._chunks.close()


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
