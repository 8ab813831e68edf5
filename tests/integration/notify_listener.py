"""A stand-in for systemd's notify socket: a real AF_UNIX datagram socket that records every
message hubd sends, with the time it arrived."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


class NotifyListener:
    def __init__(self) -> None:
        # sun_path is short (108 bytes): pytest's tmp_path may not fit.
        self._dir = Path(tempfile.mkdtemp(prefix="hubdn"))
        self.path = self._dir / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def times_of(self, line: str) -> list[float]:
        return [at for at, text in list(self.messages) if line in text.splitlines()]

    def first(self, prefix: str) -> float | None:
        for at, text in list(self.messages):
            if any(item.startswith(prefix) for item in text.splitlines()):
                return at
        return None

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
