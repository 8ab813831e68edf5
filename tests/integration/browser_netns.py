"""A network namespace of its own for a test's Chromium, so that it does not see this
machine's network change (docs/https.md, "A browser beside a busy Docker engine").

Chromium on Linux watches the machine's addresses and links (netlink). When one changes it
flushes its socket pools with ERR_NETWORK_CHANGED: every request still waiting for a
connection (TCP connect, TLS handshake) fails at once, and nothing retries it, so a page's
`fetch()` rejects with "Failed to fetch". On this machine the tests running beside a browser
test create and remove Docker networks and containers all the time (each one a bridge address
or a veth's IPv6 link-local address), about one change every few seconds under the full suite.

`Isolation` holds a fresh namespace with only `lo` up, and pipes its 127.0.0.1:PORT, for each
port asked for, to this machine's 127.0.0.1:PORT (a listening socket made inside the
namespace by a thread that entered it; every other socket is the machine's). Chromium runs in
the namespace through a small wrapper (`nsenter --net`), and chromedriver talks to it over a
pipe (`--remote-debugging-pipe`), as its DevTools port would be in the namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
CHUNK_BYTES = 65536
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _in_namespace(namespace: Path, make: Callable[[], T]) -> T:
    """`make()` run by a thread that entered `namespace` (a thread's network namespace is its
    own: the caller's stays the machine's, and the sockets made keep the namespace)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def enter_and_make() -> None:
        try:
            with namespace.open() as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns {namespace}: {os.strerror(error)}")
            result.append(make())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=enter_and_make, name="hubd-netns-enter")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy one direction until its end, then pass the half-close on."""
    try:
        while data := source.recv(CHUNK_BYTES):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        # A reset on one side: end both, as the peer would see it.
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Isolation:
    """A network namespace with only loopback, and the given ports of this machine's
    loopback reachable in it."""

    def __init__(self, ports: Iterable[int]) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep infinity"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._listeners: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._folder = Path(tempfile.mkdtemp(prefix="hubd-netns-"))
        try:
            assert self._holder.stdout is not None
            if self._holder.stdout.readline().strip() != "up":
                raise RuntimeError("could not make a network namespace for the browser")
            self.namespace = Path(f"/proc/{self._holder.pid}/ns/net")
            for port in sorted(set(ports)):
                listener = _in_namespace(self.namespace, functools.partial(_listen, port))
                self._listeners.append(listener)
                threading.Thread(
                    target=self._accept, args=(listener, port), name=f"hubd-netns-{port}",
                    daemon=True,
                ).start()  # fmt: skip
        except BaseException:
            self.close()
            raise

    def wrapper(self, program: str) -> str:
        """An executable that runs `program` with its arguments in the namespace."""
        path = self._folder / Path(program).name
        path.write_text(f'#!/bin/sh\nexec nsenter --net={self.namespace} {program} "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    def _accept(self, listener: socket.socket, port: int) -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._relay, args=(inside, port), name=f"hubd-netns-{port}-conn",
                daemon=True,
            ).start()  # fmt: skip

    def _relay(self, inside: socket.socket, port: int) -> None:
        try:
            outside = socket.create_connection(("127.0.0.1", port))
        except OSError:
            inside.close()  # as the machine's refused connection
            return
        with self._lock:
            if self._closed:
                inside.close()
                outside.close()
                return
            self._open.update((inside, outside))
        back = threading.Thread(target=_pump, args=(outside, inside), daemon=True)
        back.start()
        _pump(inside, outside)
        back.join()
        with self._lock:
            self._open.difference_update((inside, outside))
        inside.close()
        outside.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets = [*self._listeners, *self._open]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        if self._holder.stdout is not None:
            self._holder.stdout.close()
        for path in self._folder.iterdir():
            path.unlink()
        self._folder.rmdir()


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener
