"""Wake-ups when the kernel reports an address or link change, so hubd rescans at once.

Linux: a rtnetlink socket subscribed to link and IPv4/IPv6 address events. macOS and the BSDs:
a routing socket (AF_ROUTE), which reports new and deleted addresses among other messages.
Elsewhere, or if the socket cannot be opened, there is nothing to wait on and the advertiser's
periodic rescan (Timing.mdns_address_poll_s) is the only way changes are seen. The messages'
contents are not parsed: any message just means "look again"; the rescan says what changed.
"""

from __future__ import annotations

import contextlib
import socket

_RTMGRP_LINK = 0x1
_RTMGRP_IPV4_IFADDR = 0x10
_RTMGRP_IPV6_IFADDR = 0x100


class ChangeWatcher:
    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.error: str | None = None
        try:
            if hasattr(socket, "AF_NETLINK"):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                sock.bind((0, _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR))
            elif hasattr(socket, "AF_ROUTE"):
                sock = socket.socket(socket.AF_ROUTE, socket.SOCK_RAW, 0)
            else:
                return
        except OSError as exc:
            self.error = f"cannot watch address changes ({exc}); polling only"
            return
        sock.setblocking(False)
        self._sock = sock

    def fileno(self) -> int | None:
        return self._sock.fileno() if self._sock is not None else None

    def drain(self) -> bool:
        """Read every pending message; True if there was any."""
        seen = False
        while self._sock is not None:
            try:
                self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                # Overrun (ENOBUFS): messages were lost, which is still "something changed".
                seen = True
                break
            seen = True
        return seen

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
