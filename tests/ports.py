"""A free loopback port for a server a test starts later, while something already dials it.

Not one the kernel hands out for outgoing connections (its ephemeral range): a client that
retries a connect to a free port of that range can be given that very port as its own and
connect to itself, and every other connection on the machine may take it meanwhile; either
way the server's bind then fails with "address already in use". A port below the range is
taken only by an explicit bind.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


def free_port() -> int:
    try:
        first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768  # Linux's default
    while True:
        port = random.randrange(LOWEST_PORT, max(first_ephemeral, LOWEST_PORT + 1000))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
