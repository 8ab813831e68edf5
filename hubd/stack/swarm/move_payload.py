"""What the move's helper containers run: `python3 -c <this file> MODE ...` in the user image.

Standard library only, Python 3.8+, because it runs in whatever image people's servers use
(which has Python: JupyterLab needs it). hubd imports it too, for the manifest's format.

- `send ROOT HOST PORT`: prints ROOT's manifest, then streams ROOT as a tar archive to
  HOST:PORT (the receiver's task, over the move's private overlay network).
- `receive ROOT PORT`: refuses a ROOT that already holds files, takes one tar stream on PORT,
  unpacks it as it came (owners, modes, symlinks, empty folders) and prints ROOT's manifest.
- `manifest ROOT`: prints the manifest only (tests compare both nodes' copies with it).
- `wipe ROOT`: deletes everything in ROOT (a half-copied target, or the old copy on a node
  whose engine hubd cannot reach to remove the volume itself).

The manifest is one JSON array per entry (path, type, mode, uid, gid, size, sha256 or link
target), sorted by path; it is printed zlib-compressed and base64-encoded in MANIFEST lines,
followed by one SUMMARY line with the counts and the manifest's own sha256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import sys
import tarfile
import time
import zlib

CHUNK_CHARS = 4000  # well under Docker's 16 KiB log line, which it would split
# Timings come from hubd's Timing, as environment variables of the helper.
ENV_IO_TIMEOUT = "HUBD_MOVE_IO_TIMEOUT_S"
ENV_CONNECT_DEADLINE = "HUBD_MOVE_CONNECT_DEADLINE_S"
ENV_CONNECT_RETRY = "HUBD_MOVE_CONNECT_RETRY_S"
EXIT_NOT_EMPTY = 3
EXIT_NO_SOURCE = 4


def entries(root: str) -> list[list[object]]:
    """Every file, folder and link under `root` (itself as '.'), without following links."""
    found = [_entry(root, ".")]
    for folder, dirs, files in os.walk(root):
        # os.walk lists a symlink to a folder among `dirs` but does not enter it.
        for name in dirs + files:
            path = os.path.join(folder, name)
            found.append(_entry(path, os.path.relpath(path, root)))
    found.sort(key=lambda e: str(e[0]))
    return found


def _entry(path: str, relative: str) -> list[object]:
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    base = [os.fsdecode(relative), "", mode, info.st_uid, info.st_gid, 0, ""]
    if stat.S_ISLNK(info.st_mode):
        base[1], base[6] = "link", os.fsdecode(os.readlink(path))
    elif stat.S_ISDIR(info.st_mode):
        base[1] = "dir"
    elif stat.S_ISREG(info.st_mode):
        base[1], base[5], base[6] = "file", info.st_size, _sha256(path)
    else:
        base[1] = "other"
    return base


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_text(manifest: list[list[object]]) -> str:
    return "\n".join(json.dumps(e, separators=(",", ":")) for e in manifest)


def encode(manifest: list[list[object]]) -> str:
    text = manifest_text(manifest).encode("utf-8", "surrogateescape")
    return base64.b64encode(zlib.compress(text)).decode()


def decode(encoded: str) -> list[list[object]]:
    text = zlib.decompress(base64.b64decode(encoded)).decode("utf-8", "surrogateescape")
    return [json.loads(line) for line in text.splitlines() if line]


def summary(manifest: list[list[object]]) -> dict[str, object]:
    digest = hashlib.sha256(manifest_text(manifest).encode("utf-8", "surrogateescape"))
    return {
        "entries": len(manifest),
        "files": sum(1 for e in manifest if e[1] == "file"),
        "bytes": sum(int(str(e[5])) for e in manifest),
        "sha256": digest.hexdigest(),
    }


def report(root: str) -> None:
    manifest = entries(root)
    encoded = encode(manifest)
    for start in range(0, len(encoded), CHUNK_CHARS):
        print("MANIFEST " + encoded[start : start + CHUNK_CHARS])
    print("SUMMARY " + json.dumps(summary(manifest)), flush=True)


def send(root: str, host: str, port: int) -> None:
    if not os.listdir(root) and os.lstat(root).st_uid == 0:
        # Docker made this volume just now for the mount: the person never had files here.
        print(f"ERROR no volume with files at {root}", flush=True)
        sys.exit(EXIT_NO_SOURCE)
    report(root)
    deadline = time.monotonic() + _seconds(ENV_CONNECT_DEADLINE)
    while True:
        try:
            # The receiver's task may not be listening (or in the DNS) yet.
            connection = socket.create_connection((host, port), timeout=_seconds(ENV_IO_TIMEOUT))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(_seconds(ENV_CONNECT_RETRY))
    # Nested, not parenthesized: this runs on the image's Python, which may be older.
    with connection:
        with connection.makefile("wb") as stream:  # noqa: SIM117
            with tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as archive:
                archive.add(root, arcname=".", recursive=True)
        # Not done until the receiver has read it all and hung up: data still in this
        # socket's buffer dies with the container if it exits first.
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(1 << 16):
            pass


def receive(root: str, port: int) -> None:
    if os.listdir(root):
        print(f"ERROR {root} already holds files", flush=True)
        sys.exit(EXIT_NOT_EMPTY)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(1)
    listener.settimeout(_seconds(ENV_IO_TIMEOUT))
    connection, _ = listener.accept()
    connection.settimeout(_seconds(ENV_IO_TIMEOUT))
    options: dict[str, object] = {"numeric_owner": True}
    if hasattr(tarfile, "fully_trusted_filter"):
        # Python 3.14 defaults to the 'data' filter, which drops some mode bits; the stream
        # is hubd's own, from the person's own volume.
        options["filter"] = "fully_trusted"
    with connection, connection.makefile("rb") as stream:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            archive.extractall(root, **options)  # type: ignore[arg-type]
        # The archive's padding, up to the sender's end: closing with unread data would
        # reset the connection, which the sender takes as a failure.
        while stream.read(1 << 16):
            pass
    report(root)


def _seconds(name: str) -> float:
    return float(os.environ[name])


def wipe(root: str) -> None:
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)  # never follows a symlink out of the volume
        else:
            os.unlink(path)
    print("WIPED", flush=True)


def main(argv: list[str]) -> None:
    # PID 1 in its container ignores SIGTERM unless it asks for it: a helper removed mid-way
    # (the other side failed) would hold the volume until Docker's kill 10 s later.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    mode, root = argv[0], argv[1]
    if mode == "send":
        send(root, argv[2], int(argv[3]))
    elif mode == "receive":
        receive(root, int(argv[2]))
    elif mode == "manifest":
        report(root)
    elif mode == "wipe":
        wipe(root)
    else:
        print(f"ERROR unknown mode {mode}", flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
