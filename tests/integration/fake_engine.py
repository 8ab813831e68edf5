"""A stand-in in front of the real engine's socket, for engine faults without the exclusive
lock: `DOCKER_HOST=unix://<proxy.path>` makes hubd talk through it.

Modes: `pass` forwards bytes both ways; `error` answers every request with HTTP 500;
`hang` accepts connections and never answers. Leaving `pass` drops every forwarded
connection, as an engine restarted in the middle of a call would.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import tempfile
import threading
from pathlib import Path

ERROR_BODY = b'{"message":"fake engine: internal server error"}'


class EngineProxy:
    def __init__(self, target: str = "/var/run/docker.sock") -> None:
        self.target = target
        self._dir = Path(tempfile.mkdtemp(prefix="hubde"))
        self._dir.chmod(0o755)  # the hub container mounts the socket
        self.path = self._dir / "docker.sock"
        self.mode = "pass"
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode != "pass":
            with self._lock:
                live, self._live = self._live, set()
            for sock in live:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._closing = True
        self.set_mode("closed")
        self._server.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            handler = {"pass": self._forward, "error": self._answer_500}.get(self.mode, self._hold)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._live.update(socks)

    def _forward(self, conn: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.target)
        except OSError:
            conn.close()
            return
        self._track(conn, upstream)
        peers = {conn: upstream, upstream: conn}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                sock.close()

    def _answer_500(self, conn: socket.socket) -> None:
        self._track(conn)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                conn.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(ERROR_BODY)}\r\n\r\n".encode()
                    + ERROR_BODY
                )
        except OSError:
            return
        finally:
            conn.close()

    def _hold(self, conn: socket.socket) -> None:
        self._track(conn)
        try:
            while conn.recv(65536):
                pass  # read and never answer: a frozen engine
        except OSError:
            pass
        finally:
            conn.close()
