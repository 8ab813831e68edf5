"""The mDNS message codec, checked against python-zeroconf's own parser and writer."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from zeroconf import DNSAddress, DNSIncoming, DNSOutgoing, DNSQuestion, DNSService, const

from hubd._mdns import wire

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
    assert back == message
    assert back.is_probe and not back.is_response
    assert back.authorities[1].name == SERVICE  # a label with dots stays one label


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
        struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
        struct.pack("!HHHHHH", 0, 0, 0, 1, 0, 0)
        + b"\x00\x00\x01\x00\x01\x00\x00\x00\x78\x00\x04\x01",
    ],
)
def test_malformed_packets_are_refused(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(data)


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
