"""hubd's own mDNS sockets, next to python-zeroconf's, for what zeroconf cannot do.

zeroconf answers queries it has answers for and hands *responses* to record listeners, but a
query it cannot answer (ANY for a host name; anything while nothing is registered) never leaves
it, and it offers no way to send a probe with an authority section. These sockets bind port
5353 too (SO_REUSEADDR/SO_REUSEPORT, as zeroconf and avahi do: every socket bound there gets
a copy of each multicast packet), join the mDNS groups on the chosen links, hand every packet
to a callback, and send on each link. All our packets go by multicast, never to a host.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from hubd._mdns import wire
from hubd._mdns.addresses import Address, Link
from hubd._mdns.report import Warn
from hubd.wakeup import Wakeup

log = logging.getLogger(__name__)

# Linux: receive only the groups joined on *this* socket, i.e. only from our links (by default
# a wildcard-bound socket gets every group any socket joined on any interface).
_IP_MULTICAST_ALL = 49
_IPV6_MULTICAST_ALL = 29

PacketHandler = Callable[[wire.Message, Address], None]


class CpuBudget:
    """At most `limit_s` of this thread's CPU time per `window_s` for reading packets, on
    average, with bursts of up to `burst_s` (a token bucket of CPU time).

    A LAN peer can send a thousand packets a second, each as costly to decode as the caps
    allow (about 1 ms, bench/bench_mdns_flood.py). Once the bucket is empty, packets are
    received and dropped unread until it refills: hubd stays cheap under a sustained flood, at
    the price of missing other devices' packets meanwhile (a claim is seen again at the next
    announcement or re-check). An ordinary LAN (tens of packets a second, ~20 µs each) stays
    far below it. The burst is there for the ordinary moments that cost more at once — the
    first packets after start-up, a busy machine, a probe's answers arriving together —
    because a defending answer dropped then lets hubd take a name another host owns. The
    guard has one budget; zeroconf's listeners share another (zeroconf_input.py).
    """

    def __init__(
        self,
        limit_s: float,
        window_s: float = 1.0,
        burst_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self._rate = limit_s / window_s  # CPU seconds earned per second
        self._capacity_s = limit_s if burst_s is None else max(burst_s, limit_s)
        self._clock, self._cpu = clock, cpu
        self._last = clock()
        self._tokens_s = self._capacity_s
        self.dropped = 0

    def allows(self) -> bool:
        now = self._clock()
        earned = (now - self._last) * self._rate
        self._last = now
        self._tokens_s = min(self._capacity_s, self._tokens_s + earned)
        if self._tokens_s > 0:
            if self.dropped:
                log.debug("mDNS: %d packets dropped unread (CPU budget)", self.dropped)
                self.dropped = 0
            return True
        self.dropped += 1
        return False

    def charge(self, started_cpu_s: float) -> None:
        self._tokens_s -= self._cpu() - started_cpu_s

    def start(self) -> float:
        return self._cpu()


def _reusable(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::", wire.MDNS_PORT))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            option = _IPV6_MULTICAST_ALL
            level = socket.IPPROTO_IPV6
        else:
            sock.bind(("", wire.MDNS_PORT))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            option = _IP_MULTICAST_ALL
            level = socket.IPPROTO_IP
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):  # kernels before 4.20 lack the IPv6 one
                sock.setsockopt(level, option, 0)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class MulticastGuard:
    """Receives every mDNS packet on our links on a thread of its own; sends on each link."""

    def __init__(
        self, on_packet: PacketHandler, warn: Warn, budget: CpuBudget | None = None
    ) -> None:
        self._on_packet = on_packet
        # Budget-less by default (tests); the Advertiser passes timing's.
        self._budget = budget or CpuBudget(float("inf"))
        self._warn = warn
        self._lock = threading.Lock()
        self._v4: socket.socket | None = None
        self._v6: socket.socket | None = None
        self._links: tuple[Link, ...] = ()
        self._retired: list[socket.socket] = []
        self._wakeup = Wakeup()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name="hubd-mdns-guard", daemon=True)
        self._started = False

    def configure(self, links: Sequence[Link]) -> None:
        """(Re)open the sockets for these links. Raises OSError if IPv4 cannot be opened."""
        v4 = _reusable(socket.AF_INET) if any(link.ipv4 for link in links) else None
        v6: socket.socket | None = None
        if any(link.ipv6 for link in links):
            try:
                v6 = _reusable(socket.AF_INET6)
            except OSError as exc:
                self._warn("guard-v6", f"mDNS: no IPv6 socket ({exc}); IPv6 peers not watched")
        for link in links:
            if v4 is not None and link.ipv4:
                self._join(
                    v4,
                    socket.IPPROTO_IP,
                    socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(wire.MDNS_GROUP_V4) + link.ipv4[0].packed,
                    link,
                )
            if v6 is not None and link.ipv6:
                self._join(
                    v6,
                    socket.IPPROTO_IPV6,
                    socket.IPV6_JOIN_GROUP,
                    socket.inet_pton(socket.AF_INET6, wire.MDNS_GROUP_V6)
                    + struct.pack("@I", link.index),
                    link,
                )
        with self._lock:
            self._retired += [s for s in (self._v4, self._v6) if s is not None]
            self._v4, self._v6, self._links = v4, v6, tuple(links)
            if not self._started:
                self._started = True
                self._thread.start()
        self._wakeup.wake()

    def _join(self, sock: socket.socket, level: int, option: int, value: bytes, link: Link) -> None:
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                self._warn(
                    f"join-{link.name}-{sock.family}",
                    f"mDNS: cannot join the multicast group on {link.name}: {exc}",
                )

    def send(self, message: wire.Message) -> None:
        """Multicast `message` on every link (best effort: a failing link is warned about)."""
        data = wire.encode(message)
        with self._lock:
            v4, v6, links = self._v4, self._v6, self._links
        for link in links:
            if v4 is not None and link.ipv4:
                self._send(
                    v4,
                    link,
                    data,
                    (wire.MDNS_GROUP_V4, wire.MDNS_PORT),
                    socket.IPPROTO_IP,
                    socket.IP_MULTICAST_IF,
                    link.ipv4[0].packed,
                )
            if v6 is not None and link.ipv6:
                self._send(
                    v6,
                    link,
                    data,
                    (wire.MDNS_GROUP_V6, wire.MDNS_PORT, 0, link.index),
                    socket.IPPROTO_IPV6,
                    socket.IPV6_MULTICAST_IF,
                    struct.pack("@I", link.index),
                )

    def _send(
        self,
        sock: socket.socket,
        link: Link,
        data: bytes,
        target: tuple[object, ...],
        level: int,
        option: int,
        value: bytes,
    ) -> None:
        try:
            # One socket for all links: pick the outgoing link right before each send. Only
            # this thread and the receive thread touch the socket, and the latter never sends.
            with self._lock:
                sock.setsockopt(level, option, value)
                sock.sendto(data, target)
        except OSError as exc:
            self._warn(
                f"send-{link.name}-{sock.family}-{exc.errno}",
                f"mDNS: cannot send on {link.name}: {exc}",
            )

    def _receive(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                retired, self._retired = self._retired, []
                socks = [s for s in (self._v4, self._v6) if s is not None]
            for sock in retired:
                sock.close()
            waitables: list[Any] = [self._wakeup, *socks]
            try:
                ready, _, _ = select.select(waitables, [], [], 5.0)
            except (OSError, ValueError):
                continue  # a socket was swapped out under us; take the new list
            for sock in ready:
                if sock is self._wakeup:
                    self._wakeup.drain()
                    continue
                self._read_all(sock)

    def _read_all(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                data, source = sock.recvfrom(9000)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not self._budget.allows():
                continue
            started = self._budget.start()
            try:
                self.handle(data, source[0])
            finally:
                self._budget.charge(started)

    def handle(self, data: bytes, source: str) -> None:
        """Decode one received packet and hand it on; malformed ones are logged and dropped."""
        try:
            message = wire.decode(data)
            sender = ipaddress.ip_address(str(source).split("%")[0])
        except (wire.WireError, ValueError, UnicodeError) as exc:
            log.debug("mDNS: ignoring a malformed packet from %s: %s", source, exc)
            return
        try:
            self._on_packet(message, sender)
        except Exception:
            log.exception("mDNS: error while handling a packet from %s", sender)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        self._wakeup.wake()
        if started:
            self._thread.join(5)
        with self._lock:
            for sock in [*self._retired, self._v4, self._v6]:
                if sock is not None:
                    sock.close()
            self._retired, self._v4, self._v6 = [], None, None
        self._wakeup.close()
