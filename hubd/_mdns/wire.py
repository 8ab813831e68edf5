"""mDNS messages on the wire: the small codec the host-name guard needs.

python-zeroconf parses packets too, but merges the answer, authority and additional sections
into one list, and a probe's *authority* section is what simultaneous-probe tie-breaking
(RFC 6762 section 8.2) compares. So this module reads and writes whole messages itself. Names
are tuples of labels (an instance name such as "JupyterHub on box" is one label; splitting on
dots would be wrong).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_NSEC = 47
TYPE_ANY = 255
CLASS_IN = 1
# The top bit of a record's class is cache-flush; of a question's class, "unicast response".
CLASS_TOP_BIT = 0x8000
FLAG_RESPONSE = 0x8000
FLAG_AUTHORITATIVE = 0x0400
MDNS_PORT = 5353
MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
# RFC 6762 section 10: 120 s for records that name a host (A, AAAA, SRV), 75 min for the rest.
HOST_TTL = 120
OTHER_TTL = 4500

Name = tuple[str, ...]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WireError(ValueError):
    """A packet that is not a well-formed DNS message."""


def name_from_text(text: str) -> Name:
    """'jupyter.local.' -> ('jupyter', 'local'). Only for names without dots inside labels."""
    return tuple(label for label in text.rstrip(".").split(".") if label)


def name_key(name: Name) -> Name:
    """Names compare case-insensitively (ASCII only, RFC 6762 section 16)."""
    return tuple(label.lower() for label in name)


def name_text(name: Name) -> str:
    return ".".join(name) + "."


def encode_name(name: Name) -> bytes:
    out = bytearray()
    for label in name:
        raw = label.encode("utf-8")
        if not 0 < len(raw) <= 63:
            raise ValueError(f"DNS label {label!r} must be 1 to 63 bytes")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Question:
    name: Name
    type: int
    unicast: bool = False


@dataclass(frozen=True)
class Record:
    name: Name
    type: int
    rdata: bytes
    ttl: int = HOST_TTL
    cache_flush: bool = True
    class_: int = CLASS_IN

    def address(self) -> Address | None:
        if self.type == TYPE_A and len(self.rdata) == 4:
            return ipaddress.IPv4Address(self.rdata)
        if self.type == TYPE_AAAA and len(self.rdata) == 16:
            return ipaddress.IPv6Address(self.rdata)
        return None

    def same_data(self, other: Record) -> bool:
        return (name_key(self.name), self.type, self.class_, self.rdata) == (
            name_key(other.name),
            other.type,
            other.class_,
            other.rdata,
        )


@dataclass(frozen=True)
class Message:
    flags: int = 0
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authorities: tuple[Record, ...] = ()
    additionals: tuple[Record, ...] = ()
    id: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def is_probe(self) -> bool:
        return not self.is_response and bool(self.authorities)

    def records(self) -> tuple[Record, ...]:
        return self.answers + self.authorities + self.additionals


def address_record(name: Name, address: Address, ttl: int = HOST_TTL) -> Record:
    kind = TYPE_A if address.version == 4 else TYPE_AAAA
    return Record(name, kind, address.packed, ttl)


def srv_record(name: Name, target: Name, port: int, ttl: int = HOST_TTL) -> Record:
    # Priority 0, weight 0; the target is written uncompressed, as RFC 6762 section 18.14 and
    # the tie-break comparison (section 8.2) want.
    return Record(name, TYPE_SRV, struct.pack("!HHH", 0, 0, port) + encode_name(target), ttl)


def txt_record(name: Name, items: dict[str, str], ttl: int = OTHER_TTL) -> Record:
    data = bytearray()
    for key, value in items.items():
        raw = f"{key}={value}".encode()
        if len(raw) > 255:
            raise ValueError(f"TXT item {key!r} is longer than 255 bytes")
        data.append(len(raw))
        data += raw
    return Record(name, TYPE_TXT, bytes(data) or b"\x00", ttl)


def with_ttl(record: Record, ttl: int) -> Record:
    return Record(record.name, record.type, record.rdata, ttl, record.cache_flush, record.class_)


def encode(message: Message) -> bytes:
    """The message as bytes; names are not compressed (our messages are small)."""
    out = bytearray(
        struct.pack(
            "!HHHHHH",
            message.id,
            message.flags,
            len(message.questions),
            len(message.answers),
            len(message.authorities),
            len(message.additionals),
        )
    )
    for question in message.questions:
        class_ = CLASS_IN | (CLASS_TOP_BIT if question.unicast else 0)
        out += encode_name(question.name) + struct.pack("!HH", question.type, class_)
    for record in message.records():
        class_ = record.class_ | (CLASS_TOP_BIT if record.cache_flush else 0)
        out += encode_name(record.name)
        out += struct.pack("!HHIH", record.type, class_, record.ttl, len(record.rdata))
        out += record.rdata
    return bytes(out)


@dataclass
class _Reader:
    data: bytes
    offset: int = 0

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise WireError("message ends early")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def name(self) -> Name:
        labels, self.offset = _read_name(self.data, self.offset)
        return labels


def _read_name(data: bytes, offset: int) -> tuple[Name, int]:
    """The (decompressed) name at `offset`, and the offset just after it."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise WireError("name runs past the end")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("truncated name pointer")
            if end is None:
                end = offset + 2
            jumps += 1
            if jumps > 32:
                raise WireError("name pointer loop")
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            raise WireError("label runs past the end")
        labels.append(data[offset : offset + length].decode("utf-8", "replace"))
        offset += length
    return tuple(labels), (end if end is not None else offset)


def _read_record(reader: _Reader) -> Record:
    name = reader.name()
    kind, class_, ttl, length = struct.unpack("!HHIH", reader.take(10))
    start = reader.offset
    rdata = reader.take(length)
    if kind == TYPE_SRV and length >= 7:
        # The target may be compressed: keep the uncompressed form, the one compared.
        target, _ = _read_name(reader.data, start + 6)
        rdata = rdata[:6] + encode_name(target)
    return Record(name, kind, rdata, ttl, bool(class_ & CLASS_TOP_BIT), class_ & ~CLASS_TOP_BIT)


def decode(data: bytes) -> Message:
    reader = _Reader(data)
    ident, flags, n_q, n_an, n_ns, n_ar = struct.unpack("!HHHHHH", reader.take(12))
    questions = []
    for _ in range(n_q):
        name = reader.name()
        kind, class_ = struct.unpack("!HH", reader.take(4))
        questions.append(Question(name, kind, bool(class_ & CLASS_TOP_BIT)))
    sections: list[tuple[Record, ...]] = []
    for count in (n_an, n_ns, n_ar):
        sections.append(tuple(_read_record(reader) for _ in range(count)))
    return Message(flags, tuple(questions), sections[0], sections[1], sections[2], ident)


def compare_for_tiebreak(ours: list[Record], theirs: list[Record]) -> int:
    """RFC 6762 section 8.2: >0 if our proposed records win, <0 if theirs do, 0 if equal.

    Each side's records for the name are sorted by class, type, then raw rdata, and compared
    pairwise; the first difference decides, and a side that runs out first loses.
    """

    def key(record: Record) -> tuple[int, int, bytes]:
        return (record.class_, record.type, record.rdata)

    mine = sorted(key(record) for record in ours)
    other = sorted(key(record) for record in theirs)
    for a, b in zip(mine, other, strict=False):
        if a != b:
            return 1 if a > b else -1
    return (len(mine) > len(other)) - (len(mine) < len(other))
