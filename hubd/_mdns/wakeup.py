"""Ending a select() from another thread, or from a signal handler, at once."""

from __future__ import annotations

import contextlib
import socket


class Wakeup:
    """A socket pair: put the object in a select() list, `wake()` from anywhere to end it.

    Both ends are non-blocking: a wake while many are pending is dropped, not waited on.
    """

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def fileno(self) -> int:
        return self._r.fileno()

    @property
    def write_fd(self) -> int:
        """For `signal.set_wakeup_fd`."""
        return self._w.fileno()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._w.send(b"x")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            self._r.recv(4096)

    def close(self) -> None:
        self._r.close()
        self._w.close()
