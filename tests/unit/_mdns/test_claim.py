"""Probing, defending and conflict rules for hubd's mDNS names (no sockets)."""

from __future__ import annotations

import ipaddress

from hubd._mdns import claim as mdns_claim
from hubd._mdns import wire
from hubd._mdns.claim import HOST, SERVICE, Claim

ip = ipaddress.ip_address
OURS = (ip("192.0.2.10"), ip("2001:db8::10"))
OWN = frozenset({*OURS, ip("172.17.0.1"), ip("fe80::10")})
CLAIM = Claim(("jupyter", "local"), ("JupyterHub on box", "_http", "_tcp", "local"), OURS, 8000)


def response(*records: wire.Record) -> wire.Message:
    return wire.Message(flags=wire.FLAG_RESPONSE | wire.FLAG_AUTHORITATIVE, answers=records)


def a_record(address: str, ttl: int = 120, name: tuple[str, ...] = CLAIM.host) -> wire.Record:
    return wire.address_record(name, ip(address), ttl)


def conflicts(message: wire.Message, from_self: bool = False) -> set[str]:
    return set(mdns_claim.inspect(message, CLAIM, from_self=from_self, own_addresses=OWN).conflicts)


def test_labels() -> None:
    assert mdns_claim.host_label("jupyter", 1) == "jupyter"
    assert mdns_claim.host_label("jupyter", 2) == "jupyter-2"
    assert mdns_claim.host_label("x" * 63, 12) == "x" * 60 + "-12"
    assert mdns_claim.service_label("box", 1) == "JupyterHub on box"
    assert mdns_claim.service_label("box", 3) == "JupyterHub on box (3)"
    assert len(mdns_claim.service_label("b" * 80, 2).encode()) <= 63


def test_probe_asks_any_plus_address_types_and_proposes_our_records() -> None:
    probe = mdns_claim.probe(CLAIM, ipv6=True)
    assert probe.is_probe
    kinds = [(q.name, q.type) for q in probe.questions]
    assert kinds == [
        (CLAIM.host, wire.TYPE_ANY),
        (CLAIM.host, wire.TYPE_A),
        (CLAIM.host, wire.TYPE_AAAA),
        (CLAIM.service, wire.TYPE_ANY),
    ]
    assert not any(q.unicast for q in probe.questions)
    types = sorted(r.type for r in probe.authorities)
    assert types == [wire.TYPE_A, wire.TYPE_TXT, wire.TYPE_AAAA, wire.TYPE_SRV]
    srv = next(r for r in probe.authorities if r.type == wire.TYPE_SRV)
    assert srv.rdata.endswith(wire.encode_name(CLAIM.host))
    txt = next(r for r in probe.authorities if r.type == wire.TYPE_TXT)
    assert txt.rdata == b"\x0apath=/hub/"
    assert [q.type for q in mdns_claim.probe(CLAIM, ipv6=False).questions].count(
        wire.TYPE_AAAA
    ) == 0


def test_another_hosts_address_for_our_name_is_a_conflict() -> None:
    assert conflicts(response(a_record("192.0.2.30"))) == {HOST}
    assert conflicts(response(a_record("2001:db8::30"))) == {HOST}
    # Case does not matter in names.
    assert conflicts(response(a_record("192.0.2.30", name=("JUPYTER", "Local")))) == {HOST}


def test_only_the_same_name_type_and_class_with_other_data_is_a_conflict() -> None:
    # RFC 6762 section 9: a TXT or NSEC record for jupyter.local is no claim on the name.
    nsec = wire.Record(CLAIM.host, wire.TYPE_NSEC, b"\xc0\x0c\x00\x01\x40", 120)
    txt = wire.txt_record(CLAIM.host, {"hello": "world"})
    assert conflicts(response(nsec)) == set()
    assert conflicts(response(txt)) == set()
    # Nor is another class.
    chaos = wire.Record(CLAIM.host, wire.TYPE_A, bytes([198, 51, 100, 1]), class_=3)
    assert conflicts(response(chaos)) == set()
    # An A record with another address is; so is AAAA, also when only IPv4 is published.
    assert conflicts(response(a_record("198.51.100.1"))) == {HOST}
    v4_only = Claim(CLAIM.host, CLAIM.service, (ip("192.0.2.10"),), 8000)
    found = mdns_claim.inspect(
        response(a_record("2001:db8::99")), v4_only, from_self=False, own_addresses=OWN
    )
    assert found.conflicts == {HOST}
    # For the service name, SRV and TXT are ours: another TXT is a conflict, an A is not.
    assert conflicts(response(wire.txt_record(CLAIM.service, {"path": "/x/"}))) == {SERVICE}
    assert conflicts(response(a_record("198.51.100.1", name=CLAIM.service))) == set()


def test_a_probe_for_our_name_is_not_a_conflict_while_probing_either() -> None:
    # A record of another type in a probe's answer: ignored by the same rule.
    txt = wire.txt_record(CLAIM.host, {"x": "y"})
    found = mdns_claim.inspect(response(txt), CLAIM, from_self=False, own_addresses=frozenset())
    assert not found.conflicts


def test_our_own_records_are_not_conflicts() -> None:
    assert conflicts(response(*CLAIM.host_records(), *CLAIM.service_records())) == set()
    # An address of this machine that we do not announce (avahi here publishing the machine's
    # name, or our own packet from just before an address change) is not a rival either.
    assert conflicts(response(a_record("172.17.0.1"))) == set()
    # ...but a foreign address is, even from this machine.
    assert conflicts(response(a_record("198.51.100.1")), from_self=True) == {HOST}


def test_goodbyes_and_other_names_are_not_conflicts() -> None:
    assert conflicts(response(a_record("192.0.2.30", ttl=0))) == set()
    assert conflicts(response(a_record("192.0.2.30", name=("jupyter-2", "local")))) == set()


def test_same_service_name_elsewhere_is_a_service_conflict() -> None:
    other = wire.srv_record(CLAIM.service, ("other", "local"), 8888)
    assert conflicts(response(other)) == {SERVICE}
    # PTR records are shared: someone else's _http._tcp service is not a conflict.
    ptr = wire.Record(("_http", "_tcp", "local"), wire.TYPE_PTR, b"\x00", 4500, False)
    assert conflicts(response(ptr)) == set()


def test_known_answers_in_queries_are_not_claims() -> None:
    query = wire.Message(
        questions=(wire.Question(CLAIM.host, wire.TYPE_A),), answers=(a_record("192.0.2.30"),)
    )
    assert conflicts(query) == set()


def test_rival_probe_tiebreak() -> None:
    def rival(address: str) -> wire.Message:
        return wire.Message(
            questions=(wire.Question(CLAIM.host, wire.TYPE_ANY),), authorities=(a_record(address),)
        )

    found = mdns_claim.inspect(rival("192.0.2.99"), CLAIM, from_self=False, own_addresses=OWN)
    assert set(found.rival_probes) == {HOST}
    # Theirs: one A record 192.0.2.99; ours sorted: A 192.0.2.10, AAAA ... -> A vs A, .10 < .99.
    assert mdns_claim.tiebreak(CLAIM, HOST, found.rival_probes[HOST]) < 0
    found = mdns_claim.inspect(rival("192.0.2.1"), CLAIM, from_self=False, own_addresses=OWN)
    assert mdns_claim.tiebreak(CLAIM, HOST, found.rival_probes[HOST]) > 0
    # Our own probe coming back to us is not a rival.
    echo = mdns_claim.inspect(
        mdns_claim.probe(CLAIM, True), CLAIM, from_self=True, own_addresses=OWN
    )
    assert echo.rival_probes == {} and not echo.any_for_host


def test_any_query_for_the_host_name_is_for_us_to_answer() -> None:
    avahi_probe = wire.Message(
        questions=(wire.Question(CLAIM.host, wire.TYPE_ANY, unicast=True),),
        authorities=(a_record("192.0.2.30"),),
    )
    found = mdns_claim.inspect(avahi_probe, CLAIM, from_self=False, own_addresses=OWN)
    assert found.any_for_host and found.from_probe
    plain = wire.Message(questions=(wire.Question(CLAIM.host, wire.TYPE_ANY),))
    assert mdns_claim.inspect(plain, CLAIM, from_self=False, own_addresses=OWN).any_for_host
    # A/AAAA questions are zeroconf's to answer.
    a_only = wire.Message(questions=(wire.Question(CLAIM.host, wire.TYPE_A),))
    assert not mdns_claim.inspect(a_only, CLAIM, from_self=False, own_addresses=OWN).any_for_host


def test_known_answer_suppression_for_any_queries() -> None:
    knows = wire.Message(
        questions=(wire.Question(CLAIM.host, wire.TYPE_ANY),), answers=tuple(CLAIM.host_records())
    )
    assert not mdns_claim.inspect(knows, CLAIM, from_self=False, own_addresses=OWN).any_for_host
    stale = wire.Message(
        questions=(wire.Question(CLAIM.host, wire.TYPE_ANY),),
        answers=tuple(wire.with_ttl(r, 30) for r in CLAIM.host_records()),
    )
    assert mdns_claim.inspect(stale, CLAIM, from_self=False, own_addresses=OWN).any_for_host


def test_answer_goodbye_and_recheck_messages() -> None:
    answer = mdns_claim.host_answer(CLAIM)
    assert answer.is_response and all(r.cache_flush and r.ttl == 120 for r in answer.answers)
    assert {r.address() for r in answer.answers} == set(OURS)
    bye = mdns_claim.goodbye_for(CLAIM.host, [ip("192.0.2.9")])
    assert [(r.address(), r.ttl) for r in bye.answers] == [(ip("192.0.2.9"), 0)]
    recheck = mdns_claim.recheck_query(CLAIM, ipv6=True)
    assert not recheck.is_response and not recheck.is_probe
    # Our records as known answers: our own responder keeps quiet, a rival still answers.
    assert set(recheck.answers) == set(CLAIM.host_records() + CLAIM.service_records())
