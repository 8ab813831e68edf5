"""Crafted mDNS packets: what a stranger on the LAN can send at hubd (unit tests, the
integration tests' sender, bench/bench_mdns_flood.py)."""

from __future__ import annotations

import struct

HOST = ("jupyter", "local")
RESPONSE = 0x8400  # QR + AA
CACHE_FLUSH_IN = 0x8001
TYPE_A, TYPE_TXT, TYPE_ANY = 1, 16, 255


def header(flags: int, questions: int = 0, answers: int = 0, authorities: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0, flags, questions, answers, authorities, 0)


def name(*labels: str) -> bytes:
    return b"".join(bytes([len(raw)]) + raw for raw in (s.encode() for s in labels)) + b"\0"


def record(owner: bytes, kind: int, rdata: bytes, ttl: int = 120) -> bytes:
    return owner + struct.pack("!HHIH", kind, CACHE_FLUSH_IN, ttl, len(rdata)) + rdata


def malformed_a(host: tuple[str, ...] = HOST) -> bytes:
    """A response whose A record for the host holds 3 bytes instead of 4."""
    return header(RESPONSE, answers=1) + record(name(*host), TYPE_A, b"\xc6\x33\x64")


def txt_for(host: tuple[str, ...] = HOST) -> bytes:
    """A well-formed TXT record for the host name: another type, so no claim on the name."""
    return header(RESPONSE, answers=1) + record(name(*host), TYPE_TXT, b"\x05hello")


def a_for(address: bytes, host: tuple[str, ...] = HOST) -> bytes:
    """A well-formed A record for the host name with this address: a real claim."""
    return header(RESPONSE, answers=1) + record(name(*host), TYPE_A, address)


def forward_pointer() -> bytes:
    """The record's name is a pointer to a name placed after the record."""
    body = b"\xc0\x00" + struct.pack("!HHIH", TYPE_A, CACHE_FLUSH_IN, 120, 4) + b"\x01\x02\x03\x04"
    target = 12 + len(body)
    body = struct.pack("!H", 0xC000 | target) + body[2:]
    return header(RESPONSE, answers=1) + body + name(*HOST)


def pointer_loop() -> bytes:
    """Two pointers pointing at each other."""
    # Offsets 12 and 14: a -> 14, b -> 12.
    return header(RESPONSE, answers=1) + b"\xc0\x0e\xc0\x0c" + b"\x00" * 14


def long_name() -> bytes:
    """A 300-byte name (RFC 1035 allows 255)."""
    labels = ["a" * 59] * 5
    return header(RESPONSE, answers=1) + record(name(*labels), TYPE_A, b"\x01\x02\x03\x04")


def huge_counts() -> bytes:
    """Header claiming 65535 answers; one record follows."""
    packet = header(RESPONSE, answers=0xFFFF)
    return packet + record(name(*HOST), TYPE_A, b"\x01\x02\x03\x04")


def worst_case(size: int = 9000) -> bytes:
    """As costly to decode as fits in one mDNS message under hubd's caps: a chain of
    compression pointers 125 deep (each link one label and a pointer to the one before; a
    251-character name at its end) hidden in the rdata of a record of an unknown type, then
    as many records as fit, each named by a fresh label in front of a pointer to the end of
    the chain, each a 3-byte (malformed) A record. A query with the records split between
    the answer and authority sections, so hubd's decoder reads them twice."""
    base = 12 + 1 + 10  # header, root name, record header: where the rdata starts
    chain = bytearray(b"\x01a\x00")
    last = base
    for _ in range(124):
        here = base + len(chain)
        chain += b"\x01a" + struct.pack("!H", 0xC000 | last)
        last = here
    records = bytearray(b"\x00" + struct.pack("!HHIH", 0xFF00, 1, 120, len(chain)) + chain)
    count = 1
    while 12 + len(records) + 17 <= size and count < 256:
        records += b"\x01b" + struct.pack("!H", 0xC000 | last)
        records += struct.pack("!HHIH", TYPE_A, CACHE_FLUSH_IN, 120, 3) + b"\x01\x02\x03"
        count += 1
    return struct.pack("!HHHHHH", 0, 0, 0, count // 2, count - count // 2, 0) + bytes(records)


def normal_response() -> bytes:
    """What an ordinary responder sends: A + AAAA for a host, cache-flush, TTL 120."""
    return (
        header(RESPONSE, answers=2)
        + record(name("laptop", "local"), TYPE_A, bytes([192, 0, 2, 7]))
        + record(b"\xc0\x0c", 28, bytes(15) + b"\x07")
    )
