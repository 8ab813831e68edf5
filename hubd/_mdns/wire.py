"""mDNS messages on the wire: the small codec the host-name guard needs.

Reading is python-zeroconf's `DNSIncoming` (a maintained, compiled, hardened parser; see
`decode`), mapped onto this module's small types. Writing is done here: hubd sends probes with
an authority section and address goodbyes, and its messages are a handful of uncompressed
records. Names are tuples of labels (an instance name such as "JupyterHub on box" is one
label; splitting on dots would be wrong).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when decoding: `import hubd.mdns` stays cheap
    # zeroconf exports these at the top level without listing them in __all__.
    from zeroconf import DNSIncoming, DNSRecord  # type: ignore[attr-defined]

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


# Caps checked on the header before anything is parsed (RFC 6762 section 17: a message is at
# most 9000 bytes, so no legitimate one comes near them). A packet over a cap is dropped whole.
MAX_MESSAGE_BYTES = 9000
MAX_QUESTIONS = 64
MAX_RECORDS = 256
_HEADER = struct.Struct("!HHHHHH")


def decode(data: bytes) -> Message:
    """Parse a received packet with python-zeroconf's `DNSIncoming`; raise WireError if unusable.

    `DNSIncoming` is compiled, maintained and hardened: a name may be at most 253 characters
    of text (255 bytes on the wire) and 128 labels, a label 63 bytes; a compression pointer
    must stay inside the packet, may not point at itself or be followed twice in one name
    (loops), and chains are at most 128 deep; each name is decoded once per offset (cached),
    so the cost of a packet grows with its size and record count, not with pointer tricks
    (bench/bench_mdns_flood.py). It accepts forward pointers: with the loop check and the
    cache they cost no more than backward ones, so rejecting them would buy nothing. A
    record that does not decode, or does not fill exactly its declared rdata length (a
    3-byte A record), is dropped; record types it does not know (OPT, ...) are skipped, so
    they can never match one of our records.

    The one thing it does not give is the split into sections: `answers()` holds the
    answer, authority and additional records in one list, with dropped records missing, so
    counts cannot split it. A probe's authority section (the tie-break of RFC 6762 section
    8.2) and a query's known answers (section 7.1) must stay apart, so a query holding both
    is parsed a second time with a header that counts only its answer section: the same
    bytes, read by the same rules, drop the same records, and what the longer parse holds
    beyond the shorter one is the authority section. Responses need no split (every record
    in a response is a claim, RFC 6762 section 6). No hand-written decoder is left.
    """
    from zeroconf import DNSIncoming  # type: ignore[attr-defined]

    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(f"{len(data)} bytes: more than an mDNS message may hold")
    if len(data) < _HEADER.size:
        raise WireError("shorter than a DNS header")
    ident, flags, n_q, n_an, n_ns, n_ar = _HEADER.unpack_from(data)
    if n_q > MAX_QUESTIONS or n_an + n_ns + n_ar > MAX_RECORDS:
        raise WireError(f"{n_q} questions, {n_an + n_ns + n_ar} records: over the caps")
    if flags & FLAG_RESPONSE:
        incoming = DNSIncoming(data)
        _check(incoming)
        return Message(flags, _questions(incoming), _records(incoming.answers()), id=ident)
    # A query's additional section is not read: nothing in it concerns our claim.
    incoming = DNSIncoming(_with_counts(data, n_q, n_an + n_ns))
    _check(incoming)
    records = _records(incoming.answers())
    known = len(records) if not n_ns else 0
    if n_an and n_ns:
        known = len(_records(DNSIncoming(_with_counts(data, n_q, n_an)).answers()))
    return Message(flags, _questions(incoming), records[:known], records[known:], (), ident)


def _with_counts(data: bytes, questions: int, answers: int) -> bytes:
    """The packet with a header that counts only this many questions and answers."""
    return data[:4] + struct.pack("!HHHH", questions, answers, 0, 0) + data[12:]


def _check(incoming: DNSIncoming) -> None:
    # `valid` is false when the header or a question did not decode; a failure later in the
    # records ends the list there (the records before it each decoded completely).
    if not incoming.valid:
        raise WireError("malformed header or question section")


def _questions(incoming: DNSIncoming) -> tuple[Question, ...]:
    return tuple(
        Question(name_from_text(q.name), q.type, bool(q.unique)) for q in incoming.questions
    )


def _records(parsed: list[DNSRecord]) -> tuple[Record, ...]:
    """zeroconf's records as ours. Names come as text, so a label holding a dot reads as two
    labels: harmless here, our own labels never hold one (claim.service_label)."""
    from zeroconf import DNSAddress, DNSService, DNSText  # type: ignore[attr-defined]

    records = []
    for record in parsed:
        rdata = b""
        if isinstance(record, DNSAddress):
            rdata = record.address
        elif isinstance(record, DNSService):
            # The uncompressed form: the one tie-breaking compares (RFC 6762 section 8.2).
            target = name_from_text(record.server)
            if any(len(label.encode()) > 63 for label in target):
                continue
            rdata = struct.pack("!HHH", record.priority, record.weight, record.port)
            rdata += encode_name(target)
        elif isinstance(record, DNSText):
            rdata = record.text
        # Other types (PTR, NSEC, HINFO) keep empty rdata: hubd claims none of them, and a
        # record of a type it does not claim is never compared by its data.
        name = name_from_text(record.name)
        records.append(Record(name, record.type, rdata, record.ttl, record.unique, record.class_))
    return tuple(records)


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
