"""Ending a wait from another thread, or from a signal, at once and without a lock.

A socket pair rather than a `threading.Event`: `Event.set()` takes the event's lock, and a
signal handler runs in the main thread between two bytecodes, possibly while that thread
holds the same lock (inside its own `wait()` or `clear()`), which would deadlock it. A signal
wakes a Wakeup through `signal.set_wakeup_fd(write_fd)`, written by the interpreter's C
handler, so the Python handler only sets a flag.
"""

from __future__ import annotations

import contextlib
import select
import socket


class Wakeup:
    """A socket pair: put the object in a select() list (or `wait()` on it), `wake()` from
    anywhere to end the wait. Both ends are non-blocking: a wake while many are pending is
    dropped, not waited on. `close()` is safe twice."""

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

    def wait(self, timeout_s: float | None) -> bool:
        """Until a wake (True, also for one before the call) or `timeout_s` (False). The
        wakes stay pending: `drain()` them once acted on."""
        ready, _, _ = select.select([self._r], [], [], timeout_s)
        return bool(ready)

    def drain(self) -> None:
        """Forget the wakes so far."""
        with contextlib.suppress(OSError):
            while self._r.recv(4096):
                pass

    def close(self) -> None:
        self._r.close()
        self._w.close()
