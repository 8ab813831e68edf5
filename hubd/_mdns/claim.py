"""The names hubd claims on the LAN, the messages that claim them, and reading rivals' packets.

Pure logic, no sockets: what a probe looks like (RFC 6762 section 8.1), what counts as another
device's claim on one of our names (sections 8.1 and 9), who wins when two devices probe at
once (section 8.2), and which queries python-zeroconf leaves unanswered (ANY for the host name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubd._mdns import wire
from hubd._mdns.wire import Address, Message, Name, Question, Record

SERVICE_TYPE: Name = ("_http", "_tcp", "local")
HUB_PATH = "/hub/"
HOST, SERVICE = "host", "service"


def host_label(requested: str, number: int) -> str:
    """'jupyter', 2 -> 'jupyter-2' (RFC 6762 section 9 leaves the scheme open; avahi does this)."""
    if number <= 1:
        return requested
    suffix = f"-{number}"
    return requested[: 63 - len(suffix)].rstrip("-") + suffix


def service_label(machine: str, number: int) -> str:
    """'JupyterHub on box', 2 -> 'JupyterHub on box (2)' (RFC 6763 section 13 style)."""
    base = f"JupyterHub on {machine}".replace(".", "-")
    suffix = "" if number <= 1 else f" ({number})"
    raw = base.encode()[: 63 - len(suffix)].decode("utf-8", "ignore").rstrip()
    return raw + suffix


@dataclass(frozen=True)
class Claim:
    """One host name + one service instance name, and the records hubd wants for them."""

    host: Name
    service: Name
    addresses: tuple[Address, ...]
    port: int
    txt: dict[str, str] = field(default_factory=lambda: {"path": HUB_PATH}, compare=False)

    def host_records(self, ttl: int = wire.HOST_TTL) -> list[Record]:
        return [wire.address_record(self.host, address, ttl) for address in self.addresses]

    def service_records(self) -> list[Record]:
        return [
            wire.srv_record(self.service, self.host, self.port),
            wire.txt_record(self.service, self.txt),
        ]

    def names(self) -> dict[Name, str]:
        return {wire.name_key(self.host): HOST, wire.name_key(self.service): SERVICE}

    def records_named(self, kind: str) -> list[Record]:
        return self.host_records() if kind == HOST else self.service_records()

    @property
    def hostname(self) -> str:
        return ".".join(self.host)

    @property
    def instance(self) -> str:
        return self.service[0]


def probe(claim: Claim, ipv6: bool) -> Message:
    """RFC 6762 section 8.1: questions of type ANY, our proposed records in authority.

    Two departures, both on purpose. The host name is also asked for A (and AAAA): a host
    whose responder is python-zeroconf does not answer ANY for its host name, only A/AAAA.
    And the questions are QM, not QU: answers then come by multicast, which every socket on
    port 5353 receives; a unicast answer would reach only one of the sockets sharing the port
    (zeroconf's, not ours). RFC 6762 makes QU a SHOULD and a multicast answer always valid.
    """
    questions = [Question(claim.host, wire.TYPE_ANY), Question(claim.host, wire.TYPE_A)]
    if ipv6:
        questions.append(Question(claim.host, wire.TYPE_AAAA))
    questions.append(Question(claim.service, wire.TYPE_ANY))
    return Message(
        questions=tuple(questions),
        authorities=tuple(claim.host_records() + claim.service_records()),
    )


def recheck_query(claim: Claim, ipv6: bool) -> Message:
    """An ordinary query for our names, listing our own records as known answers.

    A device holding the name with other data answers, and that is a conflict. Our own
    responder (zeroconf) and anyone echoing our records stay quiet: known-answer suppression
    (RFC 6762 section 7.1), so the periodic re-check costs one packet, not a round of answers.
    """
    return Message(
        questions=probe(claim, ipv6).questions,
        answers=tuple(claim.host_records() + claim.service_records()),
    )


def host_answer(claim: Claim, ttl: int = wire.HOST_TTL) -> Message:
    """Our address records as a response; with ttl=0 a goodbye (RFC 6762 section 10.1)."""
    return Message(
        flags=wire.FLAG_RESPONSE | wire.FLAG_AUTHORITATIVE, answers=tuple(claim.host_records(ttl))
    )


def goodbye_for(host: Name, addresses: Iterable[Address]) -> Message:
    return Message(
        flags=wire.FLAG_RESPONSE | wire.FLAG_AUTHORITATIVE,
        answers=tuple(wire.address_record(host, a, 0) for a in addresses),
    )


@dataclass(frozen=True)
class Findings:
    """What one received packet means for our claim."""

    # Our names that another device holds ("host", "service").
    conflicts: frozenset[str] = frozenset()
    # Another device probing for one of our names: its proposed records, by our name's kind.
    rival_probes: dict[str, list[Record]] = field(default_factory=dict)
    # Someone asked for our host name with type ANY (python-zeroconf leaves it unanswered).
    any_for_host: bool = False
    from_probe: bool = False


def inspect(
    message: Message, claim: Claim, *, from_self: bool, own_addresses: frozenset[Address]
) -> Findings:
    """Read a packet against our claim.

    RFC 6762 section 9: a conflict is a record with the same name, type and class as one of
    ours and different data. Records that did not decode never get here (wire.decode drops
    them), and a record of a type we do not publish for that name (a TXT record for
    `jupyter.local`, an NSEC) is no claim on it. avahi reads probing the same way: it compares
    whole keys (name, type, class), also while probing.

    Nor is a record a rival's when it equals one of ours, when it is an address record
    carrying one of this machine's addresses (our own echo, a reflector, or avahi on this
    same machine publishing the machine's name), or, for other types, when the packet came
    from this machine. Goodbyes (TTL 0) are never claims.
    """
    names = claim.names()
    ours = claim.host_records() + claim.service_records()
    if message.is_response:
        conflicts = set()
        for record in message.records():
            kind = names.get(wire.name_key(record.name))
            if kind is None or record.ttl == 0:
                continue
            if (record.type, record.class_) not in _claimed_keys(claim, kind):
                continue
            if any(record.same_data(mine) for mine in ours):
                continue
            address = record.address()
            if address is not None:
                if address in own_addresses:
                    continue
            elif from_self:
                continue
            conflicts.add(kind)
        return Findings(conflicts=frozenset(conflicts))
    if from_self:
        return Findings()
    rivals: dict[str, list[Record]] = {}
    for record in message.authorities:
        kind = names.get(wire.name_key(record.name))
        if kind is not None:
            rivals.setdefault(kind, []).append(record)
    host_key = wire.name_key(claim.host)
    asked = any(
        wire.name_key(q.name) == host_key and q.type == wire.TYPE_ANY for q in message.questions
    )
    if asked and not message.is_probe and _known_answers_cover(message, claim):
        asked = False
    return Findings(rival_probes=rivals, any_for_host=asked, from_probe=message.is_probe)


def _claimed_keys(claim: Claim, kind: str) -> set[tuple[int, int]]:
    """(type, class) of the records we publish for our name of this kind.

    Both address types count for the host name even when only one is published (an
    IPv4-only LAN): A and AAAA answer the same question, "where is jupyter.local", and a
    device announcing the name with the other type holds the name all the same.
    """
    if kind == HOST:
        return {(wire.TYPE_A, wire.CLASS_IN), (wire.TYPE_AAAA, wire.CLASS_IN)}
    return {(record.type, record.class_) for record in claim.records_named(kind)}


def _known_answers_cover(message: Message, claim: Claim) -> bool:
    """RFC 6762 section 7.1: skip answering when the asker already holds our records with at
    least half their TTL left."""
    mine = claim.host_records()
    return bool(mine) and all(
        any(known.same_data(record) and known.ttl >= record.ttl // 2 for known in message.answers)
        for record in mine
    )


def tiebreak(claim: Claim, kind: str, theirs: list[Record]) -> int:
    """>0: we win the simultaneous probe for this name; <0: we lose; 0: same records."""
    return wire.compare_for_tiebreak(claim.records_named(kind), theirs)
