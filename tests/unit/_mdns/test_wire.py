"""The mDNS message codec, checked against python-zeroconf's own parser and writer."""

from __future__ import annotations

import dataclasses
import ipaddress
import struct

import pytest

# zeroconf keeps its wire classes at the top level "for backwards compat" but outside
# __all__; the modules that define them (_dns, _protocol) are private, so the top level it is.
from zeroconf import (  # type: ignore[attr-defined]
    DNSAddress,
    DNSIncoming,
    DNSOutgoing,
    DNSQuestion,
    DNSService,
    const,
)

from hubd._mdns import wire
from tests import mdns_packets as packets

HOST = ("jupyter", "local")
SERVICE = ("JupyterHub on box.lan", "_http", "_tcp", "local")


def test_round_trip_keeps_sections_apart() -> None:
    a = wire.address_record(HOST, ipaddress.ip_address("192.0.2.10"))
    srv = wire.srv_record(SERVICE, HOST, 8000)
    message = wire.Message(
        flags=0,
        questions=(wire.Question(HOST, wire.TYPE_ANY, unicast=True),),
        answers=(wire.with_ttl(a, 60),),
        authorities=(a, srv),
        additionals=(wire.txt_record(SERVICE, {"path": "/hub/"}),),
    )
    back = wire.decode(wire.encode(message))
    # A query's additional section is not read (nothing in it concerns a claim).
    assert dataclasses.replace(back, authorities=back.authorities[:1]) == dataclasses.replace(
        message, authorities=(a,), additionals=()
    )
    assert back.authorities[1].rdata == srv.rdata
    assert back.is_probe and not back.is_response
    # Names come from zeroconf as text: a label with a dot inside reads as two labels.
    assert back.authorities[1].name == ("JupyterHub on box", "lan", "_http", "_tcp", "local")


def test_sections_stay_apart_when_a_record_is_dropped() -> None:
    # A malformed known answer is dropped; the authority section still holds only the
    # authority records (not shifted by one).
    good = wire.address_record(HOST, ipaddress.ip_address("192.0.2.10"))
    packet = bytearray(wire.encode(wire.Message(answers=(good, good), authorities=(good,))))
    first_rdlength = packet.index(bytes([192, 0, 2, 10])) - 2
    bad = packets.record(packets.name(*HOST), packets.TYPE_A, b"\x01\x02\x03")
    body = bytes(packet[:12]) + bad + bytes(packet[first_rdlength + 6 :])
    message = wire.decode(body)
    assert message.answers == (good,)
    assert message.authorities == (good,)


def test_a_response_keeps_every_record() -> None:
    a = wire.address_record(HOST, ipaddress.ip_address("192.0.2.10"))
    txt = wire.txt_record(("Hub", "_http", "_tcp", "local"), {"path": "/hub/"})
    message = wire.Message(flags=wire.FLAG_RESPONSE, answers=(a,), additionals=(txt,))
    back = wire.decode(wire.encode(message))
    assert back.records() == (a, txt)


def test_zeroconf_reads_what_we_write() -> None:
    claim = wire.Message(
        flags=wire.FLAG_RESPONSE | wire.FLAG_AUTHORITATIVE,
        answers=(wire.address_record(HOST, ipaddress.ip_address("2001:db8::1")),),
    )
    incoming = DNSIncoming(wire.encode(claim))
    (record,) = incoming.answers()
    assert isinstance(record, DNSAddress)
    assert record.name == "jupyter.local."
    assert record.type == const._TYPE_AAAA and record.unique and record.ttl == 120
    assert record.address == ipaddress.ip_address("2001:db8::1").packed


def test_we_read_what_zeroconf_writes_including_compressed_names() -> None:
    out = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
    out.add_question(DNSQuestion("jupyter.local.", const._TYPE_ANY, const._CLASS_IN))
    out.add_answer_at_time(
        DNSAddress(
            "jupyter.local.",
            const._TYPE_A,
            const._CLASS_IN | const._CLASS_UNIQUE,
            120,
            bytes([192, 0, 2, 1]),
        ),
        0,
    )
    out.add_answer_at_time(
        DNSService(
            "Hub._http._tcp.local.",
            const._TYPE_SRV,
            const._CLASS_IN | const._CLASS_UNIQUE,
            120,
            0,
            0,
            8000,
            "jupyter.local.",
        ),
        0,
    )
    (packet,) = out.packets()
    message = wire.decode(packet)
    assert message.is_response
    assert message.questions == (wire.Question(HOST, wire.TYPE_ANY),)
    a, srv = message.answers
    assert a.address() == ipaddress.ip_address("192.0.2.1") and a.cache_flush
    # zeroconf compresses the SRV target; we keep it uncompressed (what tie-breaks compare).
    assert srv.rdata == struct.pack("!HHH", 0, 0, 8000) + wire.encode_name(HOST)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 11,
        struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\x07jupyter",  # name runs off the end
        struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # to itself
        packets.pointer_loop(),
        packets.long_name(),
        packets.huge_counts(),
        struct.pack("!HHHHHH", 0, 0, 65, 0, 0, 0) + b"\x00" * 4 * 65,  # too many questions
        packets.header(packets.RESPONSE, answers=1) + b"\x00" * (wire.MAX_MESSAGE_BYTES),
    ],
    ids=["empty", "short", "cut-name", "self-pointer", "loop", "300-byte", "counts", "q", "big"],
)
def test_malformed_packets_are_refused(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_malformed_records_are_dropped() -> None:
    assert wire.decode(packets.malformed_a()).records() == ()
    # The same with a good record after it: only the good one is kept.
    good = packets.record(packets.name("laptop", "local"), packets.TYPE_A, b"\xc0\x00\x02\x07")
    data = packets.header(packets.RESPONSE, answers=2) + packets.malformed_a()[12:] + good
    (record,) = wire.decode(data).records()
    assert record.name == ("laptop", "local") and record.rdata == b"\xc0\x00\x02\x07"
    # A 17-byte AAAA record too.
    aaaa = packets.record(packets.name(*HOST), 28, bytes(17))
    assert wire.decode(packets.header(packets.RESPONSE, answers=1) + aaaa).records() == ()


def test_txt_for_our_host_name_decodes_as_txt() -> None:
    (record,) = wire.decode(packets.txt_for()).records()
    assert record.type == wire.TYPE_TXT and record.name == HOST


def test_forward_pointer_reads_the_name_it_points_to() -> None:
    # Accepted (zeroconf's rules: inside the packet, no loops, chains at most 128 deep);
    # the name is the one pointed at, nothing more.
    (record,) = wire.decode(packets.forward_pointer()).records()
    assert record.name == HOST and record.rdata == b"\x01\x02\x03\x04"


def test_worst_case_packet_decodes_to_nothing_and_stays_under_the_caps() -> None:
    data = packets.worst_case()
    assert len(data) <= wire.MAX_MESSAGE_BYTES
    message = wire.decode(data)
    # 125-deep pointer chain, every A record 3 bytes long: nothing survives.
    assert message.records() == ()


def test_name_helpers() -> None:
    assert wire.name_from_text("Jupyter.local.") == ("Jupyter", "local")
    assert wire.name_key(("Jupyter", "LOCAL")) == ("jupyter", "local")
    assert wire.name_text(HOST) == "jupyter.local."
    with pytest.raises(ValueError):
        wire.encode_name(("x" * 64, "local"))


def test_tiebreak_follows_rfc_6762_section_8_2() -> None:
    def a(text: str) -> wire.Record:
        return wire.address_record(HOST, ipaddress.ip_address(text))

    # Higher rdata wins.
    assert wire.compare_for_tiebreak([a("192.0.2.20")], [a("192.0.2.10")]) > 0
    assert wire.compare_for_tiebreak([a("192.0.2.10")], [a("192.0.2.20")]) < 0
    # Type decides before rdata (A=1 < AAAA=28), records sorted first.
    assert wire.compare_for_tiebreak([a("2001:db8::1")], [a("192.0.2.250")]) > 0
    assert (
        wire.compare_for_tiebreak(
            [a("192.0.2.10"), a("192.0.2.5")], [a("192.0.2.5"), a("192.0.2.9")]
        )
        > 0
    )
    # Identical sets: no conflict; a superset wins.
    assert wire.compare_for_tiebreak([a("192.0.2.1")], [a("192.0.2.1")]) == 0
    assert wire.compare_for_tiebreak([a("192.0.2.1"), a("192.0.2.2")], [a("192.0.2.1")]) > 0
