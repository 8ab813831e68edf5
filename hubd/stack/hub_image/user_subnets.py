"""Which /29 of the people's block a person's network gets (runs inside the hub; hubd picks
the block, hubd/stack/subnets.py says how and why).

Pure: the spawner (hubd_spawner.py) tries the subnets in this order and the engine refuses one
that overlaps a network made meanwhile, by this hub or anybody else, so the next is tried.
A person's first choice depends on their name only, so concurrent spawns of different people
rarely meet on the same subnet in the first place.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator

SLOT_PREFIX = 29


def slot_count(block: str) -> int:
    return int(2 ** (SLOT_PREFIX - ipaddress.IPv4Network(block).prefixlen))


def slot(block: str, index: int) -> str:
    network = ipaddress.IPv4Network(block)
    size = 2 ** (32 - SLOT_PREFIX)
    return str(ipaddress.IPv4Network((int(network.network_address) + index * size, SLOT_PREFIX)))


def first_slot(block: str, name: str) -> int:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % slot_count(block)


def candidates(block: str, name: str, taken: set[str]) -> Iterator[str]:
    """Every /29 of the block once, from the person's own first choice on, skipping the ones
    known to be taken."""
    count = slot_count(block)
    start = first_slot(block, name)
    for step in range(count):
        subnet = slot(block, (start + step) % count)
        if subnet not in taken:
            yield subnet


def is_overlap(engine_text: str) -> bool:
    """The engine's refusal of a subnet some other network already has."""
    text = engine_text.lower()
    return "overlap" in text
