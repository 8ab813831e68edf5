"""The address block people's networks take their subnets from.

Left to the engine, each person's network takes a whole subnet of the engine's
`default-address-pools` (Docker's defaults hold about 31), and the 30th person of a class
cannot start a server. So hubd gives each person's network a /29 of its own choosing (room for
the gateway, the person's server, the hub and the proxy, plus a second hub while one is being
replaced) out of one private block: a /16 holds 8192 of them. The hub picks the /29 when it
spawns (hub_image/user_subnets.py); the engine refuses overlapping subnets, so concurrent
spawns that pick the same one simply try the next.

hubd picks the block (`user_network_block = "auto"`): the first /16 in 10.0.0.0/8, from a
fixed list, that overlaps no network of the engine (but hubd's own people's networks, of any
stack, which share blocks safely) and no route or address of this machine. A block that
already holds this stack's people's networks is kept, so a restart never moves it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import socket
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hubd.errors import StackError
from hubd.stack.naming import LABEL_ROLE, LABEL_STACK, ROLE_USER_NETWORK

log = logging.getLogger(__name__)

AUTO = "auto"
SLOT_PREFIX = 29
BLOCK_PREFIX = 16
# 10.200-255 first (rarely used by home routers, VPNs or clouds), then 10.100-199.
AUTO_CANDIDATES = tuple(
    ipaddress.IPv4Network(f"10.{second}.0.0/{BLOCK_PREFIX}")
    for second in (*range(200, 256), *range(100, 200))
)
PROC_ROUTES = Path("/proc/net/route")
PROC_FIB = Path("/proc/net/fib_trie")

Net = ipaddress.IPv4Network


def host_networks(routes: Path = PROC_ROUTES, fib: Path = PROC_FIB) -> list[Net]:
    """This machine's IPv4 routes (not the default route) and local addresses, on Linux.
    Elsewhere (Docker Desktop) the engine runs in a VM whose routes are its networks'."""
    found: list[Net] = []
    try:
        lines = routes.read_text().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = (
            socket.inet_ntoa(struct.pack("<I", int(f, 16))) for f in (fields[1], fields[7])
        )
        network = Net(f"{dest}/{mask}", strict=False)
        if network.prefixlen > 0:
            found.append(network)
    try:
        trie = fib.read_text().splitlines()
    except OSError:
        trie = []
    # "|-- 192.168.1.20" followed by "/32 host LOCAL": an address of this machine.
    for previous, line in itertools.pairwise(trie):
        if "/32 host LOCAL" in line and "|--" in previous:
            address = previous.split("|--")[1].strip()
            with contextlib.suppress(ValueError):
                found.append(Net(f"{address}/32"))
    return found


def _subnets(network: dict[str, Any]) -> Iterator[Net]:
    for pool in (network.get("IPAM") or {}).get("Config") or []:
        try:
            yield Net(str(pool.get("Subnet") or ""))
        except ValueError:
            continue  # IPv6 or empty


def engine_subnets(client: Any, stack: str) -> tuple[list[Net], list[Net], list[Net]]:
    """(this stack's people's subnets, hubd's people's subnets of any stack, all others)."""
    own: list[Net] = []
    peoples: list[Net] = []
    others: list[Net] = []
    for network in client.api.networks():
        labels = network.get("Labels") or {}
        subnets = list(_subnets(network))
        if labels.get(LABEL_ROLE) == ROLE_USER_NETWORK:
            peoples.extend(subnets)
            if labels.get(LABEL_STACK) == stack:
                own.extend(subnets)
        else:
            others.extend(subnets)
    return own, peoples, others


def pick_block(
    candidates: Iterable[Net], own: list[Net], peoples: list[Net], blocked: list[Net]
) -> Net | None:
    """The candidate that already holds this stack's people's subnets, whatever appeared
    beside it since (it must never move while they exist); else the first one that overlaps
    nothing in `blocked` (docker bridges' routes equal to people's subnets are theirs, not
    the machine's)."""
    candidates = list(candidates)
    holding = [c for c in candidates if any(s.subnet_of(c) for s in own)]
    if holding:
        return max(holding, key=lambda c: sum(1 for s in own if s.subnet_of(c)))
    taken = machines_own(blocked, peoples)
    usable = [c for c in candidates if not any(c.overlaps(b) for b in taken)]
    return usable[0] if usable else None


def machines_own(blocked: list[Net], peoples: list[Net]) -> list[Net]:
    """What in `blocked` belongs to the machine, not to hubd's people's networks: a bridge's
    route equal to a person's subnet, and its gateway address inside it, are that network's."""
    return [b for b in blocked if not any(b.subnet_of(p) for p in peoples)]


def choose_block(client: Any, stack: str, configured: str) -> str:
    """The block for this stack: the configured one (checked), or one hubd picks."""
    own, peoples, others = engine_subnets(client, stack)
    blocked = [*others, *host_networks()]
    if configured != AUTO:
        block = Net(configured)
        clash = next((b for b in machines_own(blocked, peoples) if block.overlaps(b)), None)
        if clash is not None:
            raise StackError(
                f"user_network_block {block} overlaps {clash}, already in use on this machine "
                "or its Docker engine: set user_network_block to a free private range "
                "(or 'auto') in hubd's config"
            )
        return str(block)
    picked = pick_block(AUTO_CANDIDATES, own, peoples, blocked)
    if picked is None:
        raise StackError(
            "hubd found no free /16 in 10.100.0.0-10.255.255.255 for people's networks: set "
            "user_network_block to a free private range (e.g. '172.30.0.0/16') in hubd's config"
        )
    return str(picked)
