"""A tiny image registry on loopback whose layer arrives slowly, or stalls: a slow link.

It speaks just enough of the registry v2 API for `docker pull 127.0.0.1:PORT/slow/image:1`
(the engine trusts plain HTTP on loopback): one manifest, one config, one layer. The layer
is sent in small pieces with a pause between them (`dribble`), or its first piece only and
then nothing (`stall`) until the server closes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(size: int) -> tuple[bytes, bytes]:
    """(gzipped layer, uncompressed tar) holding one file of random bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        payload = os.urandom(size)  # incompressible: the gzip is as big as the payload
        info = tarfile.TarInfo("slow.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    tar = buffer.getvalue()
    return gzip.compress(tar, mtime=0), tar


class SlowRegistry:
    def __init__(
        self, size: int = 256 * 1024, chunk: int = 4096, pause_s: float = 0.05, stall: bool = False
    ) -> None:
        self.layer, tar = _layer(size)
        self.config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": [_sha(tar)]},
            }
        ).encode()
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(self.config),
                    "digest": _sha(self.config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer),
                        "digest": _sha(self.layer),
                    }
                ],
            }
        ).encode()
        self.chunk, self.pause_s, self.stall = chunk, pause_s, stall
        self.closing = threading.Event()
        self.layer_requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def image(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}/slow/image:1"

    def start(self) -> SlowRegistry:
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = self.path.split("?")[0]
                if path == "/v2/":
                    return self._send(200, b"{}", "application/json", body)
                if path == "/v2/slow/image/manifests/1" or path.endswith(_sha(registry.manifest)):
                    return self._send(200, registry.manifest, MANIFEST_TYPE, body)
                if path.endswith(_sha(registry.config)):
                    return self._send(200, registry.config, "application/octet-stream", body)
                if path.endswith(_sha(registry.layer)):
                    if not body:
                        return self._send(200, registry.layer, "application/octet-stream", False)
                    registry.layer_requests += 1
                    return self._dribble(registry.layer)
                return self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "", body)

            def _send(self, code: int, data: bytes, kind: str, body: bool) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _sha(data))
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _dribble(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _sha(data))
                self.end_headers()
                try:
                    for start in range(0, len(data), registry.chunk):
                        self.wfile.write(data[start : start + registry.chunk])
                        self.wfile.flush()
                        if registry.stall:
                            registry.closing.wait()
                            return
                        time.sleep(registry.pause_s)
                except OSError:
                    return  # the engine gave up on the pull

        return Handler
