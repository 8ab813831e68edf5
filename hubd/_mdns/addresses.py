"""Which of this machine's addresses the mDNS host name stands for.

Read with `ifaddr` (already a python-zeroconf dependency; works on Linux and macOS) plus the
SIOCGIFFLAGS ioctl for up/running/loopback/point-to-point, then filtered by
`select_addresses()`, a pure function so the rules are unit-tested:

- never loopback interfaces or addresses;
- by default, no virtual interfaces: container and VM bridges (docker0, br-<id>, virbr*, cni*,
  flannel*, ...), veth pairs, tunnels and VPNs (tun*, wg*, tailscale*, utun*, point-to-point
  links). Their addresses are unreachable from the LAN, so answering with them makes clients
  try dead addresses first. Naming interfaces explicitly (`mdns_interfaces`) skips the name and
  point-to-point rules, never the loopback one;
- IPv4 link-local (169.254/16) only when the machine has no other IPv4 address at all: that is
  the one case where it is the way in (a laptop cabled straight to the machine, no DHCP).
  Otherwise it is dropped, as avahi also does;
- IPv6 link-local (fe80::/10) never: such an address is only usable with a zone index, which
  URLs in browsers cannot carry, and python-zeroconf answers every interface with the same
  address list, so an fe80 address of one link would be handed out on another where it points
  nowhere. Global and ULA IPv6 addresses are announced (when IPv6 is on); IPv4 covers the rest.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hubd._mdns.wire import Address as Address  # re-exported: callers think in addresses

# Interfaces whose addresses are not on the LAN. `br-` (Docker networks) but not `br0`, which is
# often the bridge that carries the machine's own LAN address when it also hosts VMs.
_VIRTUAL_NAME = re.compile(
    r"^(docker\d*|br-.*|veth.*|virbr.*|vnet\d+|cni.*|flannel.*|cali.*|vxlan.*|weave.*|kube-.*"
    r"|lxcbr.*|lxdbr.*|podman.*|vboxnet.*|vmnet.*|tun.*|tap.*|wg.*|tailscale.*|zt.*|utun.*"
    r"|awdl.*|llw.*|anpi.*|bridge1\d\d|gif.*|stf.*|ipsec.*|ppp.*|lo\d*)$"
)

# SIOCGIFFLAGS and the multicast flag differ between Linux and the BSDs (macOS included).
_SIOCGIFFLAGS = {"linux": 0x8913, "darwin": 0xC0206911, "freebsd": 0xC0206911}
_IFF_UP, _IFF_LOOPBACK, _IFF_POINTOPOINT, _IFF_RUNNING = 0x1, 0x8, 0x10, 0x40
_IFF_MULTICAST = 0x1000 if sys.platform.startswith("linux") else 0x8000


@dataclass(frozen=True)
class LinkFlags:
    up: bool = True
    running: bool = True
    loopback: bool = False
    point_to_point: bool = False
    multicast: bool = True


@dataclass(frozen=True)
class Interface:
    """An interface as the OS reports it; `flags` is None where they could not be read."""

    name: str
    index: int
    addresses: tuple[Address, ...]
    flags: LinkFlags | None = None


@dataclass(frozen=True)
class Link:
    """An interface hubd advertises on."""

    name: str
    index: int
    announced: tuple[Address, ...]
    # Every IPv4 address of the link (link-local too): the first one picks the link for
    # sending IPv4 multicast. `ipv6` says whether to listen and send over IPv6 there.
    ipv4: tuple[ipaddress.IPv4Address, ...]
    ipv6: bool


@dataclass(frozen=True)
class Selection:
    links: tuple[Link, ...]
    # Every address of this machine, chosen or not: a packet from one of them is our own, and
    # an address record carrying one of them is not a rival's claim.
    local: frozenset[Address]
    # Interfaces that were asked for by name but do not exist.
    missing: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[Address, ...]:
        return tuple(address for link in self.links for address in link.announced)


def is_virtual_name(name: str) -> bool:
    return bool(_VIRTUAL_NAME.match(name))


def _usable(address: Address) -> bool:
    return not (address.is_loopback or address.is_multicast or address.is_unspecified)


def select_addresses(
    interfaces: Iterable[Interface], wanted: Sequence[str] = (), ipv6: bool = True
) -> Selection:
    """The links and addresses to announce, by the rules in the module docstring."""
    interfaces = list(interfaces)
    local = frozenset(a for iface in interfaces for a in iface.addresses)
    names = {iface.name for iface in interfaces}
    missing = tuple(name for name in wanted if name not in names)
    chosen: list[tuple[Interface, list[Address], list[ipaddress.IPv4Address], bool]] = []
    for iface in sorted(interfaces, key=lambda i: (i.index, i.name)):
        explicit = bool(wanted)
        if explicit and iface.name not in wanted:
            continue
        flags = iface.flags
        if flags is not None and (flags.loopback or not (flags.up and flags.running)):
            continue
        if not explicit and (
            is_virtual_name(iface.name)
            or (flags is not None and (flags.point_to_point or not flags.multicast))
        ):
            continue
        v4 = sorted(
            a for a in iface.addresses if isinstance(a, ipaddress.IPv4Address) and _usable(a)
        )
        v6 = (
            sorted(
                a for a in iface.addresses if isinstance(a, ipaddress.IPv6Address) and _usable(a)
            )
            if ipv6
            else []
        )
        announced: list[Address] = [a for a in v4 if not a.is_link_local]
        announced += [a for a in v6 if not a.is_link_local and a.ipv4_mapped is None]
        chosen.append((iface, announced, v4, bool(v6)))
    if not any(isinstance(a, ipaddress.IPv4Address) for _, ann, _, _ in chosen for a in ann):
        # No routable IPv4 anywhere: a direct cable without DHCP; 169.254 is the way in.
        chosen = [(iface, [*v4, *ann], v4, has6) for iface, ann, v4, has6 in chosen]
    links = tuple(
        Link(iface.name, iface.index, tuple(announced), tuple(v4), has_v6)
        for iface, announced, v4, has_v6 in chosen
        if announced
    )
    return Selection(links, local, missing)


def _flags(name: str) -> LinkFlags | None:
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    request = _SIOCGIFFLAGS.get("freebsd" if platform.startswith("freebsd") else platform)
    if request is None:
        return None
    import fcntl  # not on Windows; only reached where the ioctl number is known

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            ifreq = struct.pack("16s16x", name.encode()[:15])
            raw = struct.unpack_from("H", fcntl.ioctl(sock.fileno(), request, ifreq), 16)[0]
    except OSError:
        return None
    return LinkFlags(
        up=bool(raw & _IFF_UP),
        running=bool(raw & _IFF_RUNNING),
        loopback=bool(raw & _IFF_LOOPBACK),
        point_to_point=bool(raw & _IFF_POINTOPOINT),
        multicast=bool(raw & _IFF_MULTICAST),
    )


def read_interfaces() -> list[Interface]:
    """This machine's interfaces and addresses, now."""
    import ifaddr  # python-zeroconf's own dependency

    result = []
    for adapter in ifaddr.get_adapters():
        addresses: list[Address] = []
        for ip in adapter.ips:
            text = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                addresses.append(ipaddress.ip_address(str(text).split("%")[0]))
            except ValueError:
                continue
        result.append(
            Interface(adapter.name, adapter.index or 0, tuple(addresses), _flags(adapter.name))
        )
    return result
