"""What the control socket's server and client agree on."""

from __future__ import annotations

import socket
import struct

MAX_BODY_BYTES = 64 * 1024
API = "/v1"

# A streamed answer (routes.Answer.STREAM) is a 200 whose body, ended by closing the
# connection, is one JSON object a line: {"text": ...} as the text comes, {} to show the
# daemon is there while it has nothing to say, and last either {"end": reason} (the stream
# ended) or {"error": message, "kind": HubdError class}. A body that ends without one of those
# two means the daemon went away mid-answer.
STREAM_CONTENT_TYPE = "application/x-ndjson"
TEXT, END, ERROR, KIND = "text", "end", "error", "kind"


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket (Linux), or None
    where the platform cannot tell (macOS: the socket's folder and file are the guard)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)
