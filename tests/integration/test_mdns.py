"""hubd's mDNS advertiser against real avahi + nss-mdns, on a LAN of network namespaces.

Hosts (see netns.py): `adv` runs `python -m hubd.mdns`; `peer` runs avahi-daemon + dbus-daemon,
and resolves with `getent` through nss-mdns and browses with `avahi-browse`; `third` is a
device that owns or wants the same name. `adv` also has a Docker-like bridge `docker0` with a
`veth*` port, both up and running with addresses, which must never be announced.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import netns

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LAN_V4, LAN_V6 = "192.0.2.10", "2001:db8::10"
# Timings shrunk where waiting would only make the tests slow; the RFC's probe timings stay.
FAST = "mdns_conflict_check_interval_s=2,mdns_address_poll_s=1"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = netns.missing_tools()
    return f"missing tools: {', '.join(missing)}" if missing else None


class Runner:
    """`python -m hubd.mdns --json` in a host; its status lines are read as they come."""

    def __init__(self, host: netns.Host, *args: str, timing: str = FAST) -> None:
        env = {"PYTHONPATH": str(REPO), "HUBD_TIMING": timing}
        self.process = host.spawn(
            [sys.executable, "-m", "hubd.mdns", "--json", "--debug", *args], "hubd", env=env
        )

    def statuses(self) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in self.process.output().splitlines() if line.startswith("{")
        ]

    def status(self) -> dict[str, Any]:
        found = self.statuses()
        return found[-1] if found else {}

    def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        try:
            netns.wait_until(lambda: check(self.status()), timeout)
        except AssertionError:
            raise AssertionError(
                f"hubd status {self.status()} after {timeout} s; output:\n"
                + self.process.output()[-6000:]
            ) from None
        return self.status()

    def stop(self) -> int | None:
        code: int | None = self.process.stop(timeout=10)
        return code


@pytest.fixture(scope="module")
def lan() -> Iterator[netns.Lab]:
    reason = _skip_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"mDNS integration tests cannot run: {reason}")
    if reason:
        pytest.skip(reason)
    with netns.lab() as lab:
        adv = lab.add_host("adv", LAN_V4, LAN_V6)
        adv.add_container_bridge(
            "docker0", "198.51.100.129/26", "2001:db8:d0c::1/64", "veth3f2a1b", "198.51.100.193/26"
        )
        peer = lab.add_host("peer", "192.0.2.20", "2001:db8::20")
        lab.add_host("third", "192.0.2.30", "2001:db8::30")
        peer.start_avahi("peer")
        yield lab


@pytest.fixture
def hosts(lan: netns.Lab) -> Iterator[tuple[netns.Host, netns.Host, netns.Host]]:
    """The three hosts; afterwards no advertiser or rival is left running.

    Each test claims a name of its own, so none sees records another left in avahi's cache.
    """
    adv, peer, third = lan.hosts["adv"], lan.hosts["peer"], lan.hosts["third"]
    yield adv, peer, third
    third.stop_avahi()
    for process in list(lan.processes):
        if process.label in ("adv/hubd", "third/hubd", "third/zeroconf"):
            process.stop()


def _browse(peer: netns.Host) -> list[list[str]]:
    done = peer.run(
        ["avahi-browse", "--resolve", "--parsable", "--terminate", "_http._tcp"], timeout=30
    )
    return [line.split(";") for line in done.stdout.splitlines() if line.startswith("=")]


def test_peer_resolves_name_and_browses_service(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, _ = hosts
    runner = Runner(adv, "--name", "jupyter", "--port", "8000")
    status = runner.wait_for(lambda s: s.get("state") == "advertising", 15)
    assert status["hostname"] == "jupyter.local"
    # The LAN addresses only: not loopback, not docker0, not the veth, not link-local.
    assert sorted(status["addresses"]) == [LAN_V4, LAN_V6]

    assert peer.resolve("jupyter.local", "ahostsv4") == [LAN_V4]
    assert LAN_V6 in peer.resolve("jupyter.local", "ahostsv6")
    assert peer.resolve("jupyter.local", "hosts") == [LAN_V6]  # getent hosts tries IPv6 first

    services = _browse(peer)
    ours = [s for s in services if s[3].startswith("JupyterHub\\032on\\032")]
    assert ours, services
    for entry in ours:
        # =;iface;proto;name;type;domain;host;address;port;txt
        assert entry[6] == "jupyter.local"
        assert entry[7] in (LAN_V4, LAN_V6)
        assert entry[8] == "8000"
        assert entry[9] == '"path=/hub/"'
    assert runner.stop() == 0


def test_stop_makes_peer_forget(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, _ = hosts
    runner = Runner(adv, "--name", "jup-stop")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)
    netns.wait_until(lambda: peer.resolve("jup-stop.local") == [LAN_V4], 10)
    assert [s for s in _browse(peer) if s[6] == "jup-stop.local"]

    stopped = time.monotonic()
    assert runner.stop() == 0
    assert "goodbyes sent for jup-stop.local" in runner.process.output()
    # Goodbyes: the peer drops the records one second after them. Without goodbyes it would
    # keep them for their TTL, 120 s. (A failing lookup itself takes avahi's ~5 s timeout.)
    # Far below the TTL even on a loaded machine: it was the goodbyes.
    netns.wait_until(lambda: not peer.resolve("jup-stop.local"), 60, interval=0.1)
    assert time.monotonic() - stopped < 60
    assert not [s for s in _browse(peer) if s[6] == "jup-stop.local"]


def test_name_owned_by_another_device_is_not_taken(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, third = hosts
    third.start_avahi("jup-owned")  # a device that had the name first
    netns.wait_until(lambda: peer.resolve("jup-owned.local") == ["192.0.2.30"], 10)

    runner = Runner(adv, "--name", "jup-owned")
    status = runner.wait_for(lambda s: s.get("state") == "conflict-renamed", 15)
    assert status["hostname"] == "jup-owned-2.local"
    assert status["requested_name"] == "jup-owned"
    assert "jup-owned.local is in use by another device" in runner.process.output()

    assert peer.resolve("jup-owned-2.local") == [LAN_V4]
    assert peer.resolve("jup-owned.local") == ["192.0.2.30"]  # never stolen
    assert "conflict" not in third.avahi.output().lower()
    browsed = [s for s in _browse(peer) if s[6] == "jup-owned-2.local"]
    assert browsed


def test_device_probing_later_sees_the_name_taken(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, third = hosts
    runner = Runner(adv, "--name", "jup-later")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)

    # avahi probes its host name with ANY queries, which python-zeroconf leaves unanswered:
    # only hubd's own defence makes avahi see that the name is taken. Wait for zeroconf's
    # start-up announcements to be over first: heard during avahi's probing, they would tell
    # avahi the name is taken without any defence.
    time.sleep(2)
    third.start_avahi("jup-later")
    third.avahi.wait_for_line(r"Host name conflict, retrying with jup-later-2", 10)
    third.avahi.wait_for_line(r"Host name is jup-later-2\.local", 10)

    assert runner.status()["state"] == "advertising"
    assert runner.status()["hostname"] == "jup-later.local"
    assert peer.resolve("jup-later.local") == [LAN_V4]
    assert peer.resolve("jup-later-2.local") == ["192.0.2.30"]


_LATE_CLAIMER = textwrap.dedent("""
    import signal, threading
    from zeroconf import IPVersion, ServiceInfo, Zeroconf
    # A careless device: claims jup-late.local through python-zeroconf, without probing it.
    zc = Zeroconf(interfaces=["192.0.2.30"], ip_version=IPVersion.V4Only)
    info = ServiceInfo("_workstation._tcp.local.", "other._workstation._tcp.local.",
                       port=9, server="jup-late.local.", parsed_addresses=["192.0.2.30"])
    zc.register_service(info, cooperating_responders=True)
    print("claimed", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    zc.unregister_service(info)
    zc.close()
""")


def test_late_claim_is_noticed_and_resolved(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, third = hosts
    runner = Runner(adv, "--name", "jup-late")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)

    claimer = third.spawn([sys.executable, "-c", _LATE_CLAIMER], "zeroconf")
    claimer.wait_for_line("claimed", 15)
    # hubd hears the other claim, withdraws, probes again; the other device answers for the
    # name, so hubd moves to the next one rather than fight (RFC 6762 section 9).
    status = runner.wait_for(lambda s: s.get("state") == "conflict-renamed", 15)
    assert status["hostname"] == "jup-late-2.local"
    assert "another device answered for jup-late.local" in runner.process.output()
    netns.wait_until(lambda: peer.resolve("jup-late-2.local") == [LAN_V4], 10)


def test_address_changes_are_followed(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, _ = hosts
    runner = Runner(adv, "--name", "jup-moves")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)
    netns.wait_until(lambda: peer.resolve("jup-moves.local") == [LAN_V4], 10)
    try:
        # DHCP renewal with a new address, same link: announced at once, the old one withdrawn.
        adv.ip("addr", "add", "192.0.2.11/24", "dev", "eth0")
        adv.ip("addr", "del", f"{LAN_V4}/24", "dev", "eth0")
        runner.wait_for(
            lambda s: "192.0.2.11" in s["addresses"] and LAN_V4 not in s["addresses"], 5
        )
        # Announced, not learnt at the old records' expiry (TTL 120 s).
        netns.wait_until(lambda: peer.resolve("jup-moves.local") == ["192.0.2.11"], 60)

        # Wi-Fi to Ethernet: a second card comes up (probed, then announced), the first
        # goes down (its address withdrawn with goodbyes, sent on the card that is left).
        adv.add_port("eth1", "198.51.100.10/25", "2001:db8:1::10/64")
        runner.wait_for(lambda s: "198.51.100.10" in s["addresses"], 8)
        adv.ip("link", "set", "eth0", "down")
        runner.wait_for(lambda s: s["addresses"] and "192.0.2.11" not in s["addresses"], 5)
        assert sorted(runner.status()["addresses"]) == ["198.51.100.10", "2001:db8:1::10"]
        netns.wait_until(lambda: peer.resolve("jup-moves.local") == ["198.51.100.10"], 10)
        assert runner.status()["state"] == "advertising"

        # Every link down: nothing to advertise; back up: probed and announced again.
        adv.ip("link", "set", "eth1", "down")
        status = runner.wait_for(lambda s: s["state"] == "error", 5)
        assert "no LAN address" in status["last_error"]
        adv.ip("link", "set", "eth0", "up")
        runner.wait_for(lambda s: s["state"] == "advertising", 8)
        netns.wait_until(lambda: peer.resolve("jup-moves.local") == ["192.0.2.11"], 10)
    finally:
        runner.stop()
        adv.ip("link", "set", "eth0", "up")
        adv.ip("addr", "replace", f"{LAN_V4}/24", "dev", "eth0")
        adv.ip("route", "replace", "224.0.0.0/4", "dev", "eth0")
        adv.run(["ip", "addr", "del", "192.0.2.11/24", "dev", "eth0"], check=False)
        adv.run(["ip", "link", "del", "eth1"], check=False)


def test_two_advertisers_starting_together_get_different_names(
    hosts: tuple[netns.Host, ...],
) -> None:
    adv, peer, third = hosts
    # Both probe at the same moment: the simultaneous-probe tie-break (RFC 6762 section 8.2)
    # or the conflict rules must leave exactly one of them with the name.
    first = Runner(adv, "--name", "jup-twins")
    second = Runner(third, "--name", "jup-twins")
    try:
        done = ("advertising", "conflict-renamed")
        a = first.wait_for(lambda s: s.get("state") in done, 15)
        b = second.wait_for(lambda s: s.get("state") in done, 15)
        assert {a["hostname"], b["hostname"]} == {"jup-twins.local", "jup-twins-2.local"}
        winner = "192.0.2.10" if a["hostname"] == "jup-twins.local" else "192.0.2.30"
        loser = "192.0.2.30" if winner == "192.0.2.10" else "192.0.2.10"
        assert peer.resolve("jup-twins.local") == [winner]
        assert peer.resolve("jup-twins-2.local") == [loser]
    finally:
        first.stop()
        second.stop()


_FLOODER = textwrap.dedent("""
    import socket, sys, time
    from tests import mdns_packets as packets
    # A stranger on the LAN: once a second, a response with a 3-byte A record for the name,
    # then one with a well-formed TXT record for it. Neither is a claim on the name.
    host = (sys.argv[1], "local")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.0.2.30"))
    sent = 0
    while True:
        for data in (packets.malformed_a(host), packets.txt_for(host)):
            sock.sendto(data, ("224.0.0.251", 5353))
            sent += 1
        print("sent", sent, flush=True)
        time.sleep(1.0)
""")


def test_malformed_and_other_type_records_do_not_take_the_name(
    hosts: tuple[netns.Host, ...],
) -> None:
    adv, peer, third = hosts
    runner = Runner(adv, "--name", "jup-flood")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)
    netns.wait_until(lambda: peer.resolve("jup-flood.local") == [LAN_V4], 10)
    first = len(runner.statuses())

    flooder = third.spawn(
        [sys.executable, "-c", _FLOODER, "jup-flood"], "flooder", env={"PYTHONPATH": str(REPO)}
    )
    try:
        flooder.wait_for_line("sent 2", 10)
        deadline = time.monotonic() + 12
        lookups = []
        while time.monotonic() < deadline:
            lookups.append(peer.resolve("jup-flood.local", timeout=10))
            time.sleep(0.2)
        assert flooder.wait_for_line(r"sent (2[0-9]|[3-9][0-9])", 5)
    finally:
        flooder.stop()
    # The peer found the name every single time, and hubd never let go of it (a withdrawal
    # would show as a "probing" status and goodbyes).
    assert len(lookups) > 10 and all(found == [LAN_V4] for found in lookups), lookups
    assert runner.statuses()[first:] == []
    assert runner.status()["hostname"] == "jup-flood.local"
    assert "answered for jup-flood.local" not in runner.process.output()


def test_returns_to_the_requested_name_once_it_is_free(hosts: tuple[netns.Host, ...]) -> None:
    adv, peer, third = hosts
    third.start_avahi("jup-back")  # the name is taken when hubd starts
    netns.wait_until(lambda: peer.resolve("jup-back.local") == ["192.0.2.30"], 10)
    runner = Runner(adv, "--name", "jup-back", timing=FAST + ",mdns_reclaim_interval_s=2")
    status = runner.wait_for(lambda s: s.get("state") == "conflict-renamed", 15)
    assert status["hostname"] == "jup-back-2.local"
    # While the owner is there, hubd's periodic probes for the name do not take it.
    time.sleep(5)
    assert runner.status()["hostname"] == "jup-back-2.local"
    assert peer.resolve("jup-back.local") == ["192.0.2.30"]
    assert "conflict" not in third.avahi.output().lower()

    third.stop_avahi()  # the owner leaves (with goodbyes)
    status = runner.wait_for(lambda s: s.get("state") == "advertising", 10)
    assert status["hostname"] == "jup-back.local"
    assert "jup-back.local is free again" in runner.process.output()
    netns.wait_until(lambda: peer.resolve("jup-back.local") == [LAN_V4], 10)


_CLAIMER = textwrap.dedent("""
    import socket, sys, time
    from tests import mdns_packets as packets
    # Well-formed claims on the name (A 192.0.2.99) at the given seconds; never answers probes.
    host, times = (sys.argv[1], "local"), [float(t) for t in sys.argv[2:]]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.0.2.30"))
    start = time.monotonic()
    for at in times:
        time.sleep(max(0.0, start + at - time.monotonic()))
        sock.sendto(packets.a_for(bytes([192, 0, 2, 99]), host), ("224.0.0.251", 5353))
        print("claimed", at, flush=True)
    print("done", flush=True)
""")


def test_claims_nobody_defends_are_checked_at_most_every_few_seconds(
    hosts: tuple[netns.Host, ...],
) -> None:
    adv, peer, third = hosts
    runner = Runner(adv, "--name", "jup-lone")
    runner.wait_for(lambda s: s.get("state") == "advertising", 15)
    netns.wait_until(lambda: peer.resolve("jup-lone.local") == [LAN_V4], 10)
    first = len(runner.statuses())

    # Three claims, none answered when hubd probes: the first is checked at once, the other
    # two (3 s and 4.5 s later, within 5 s of that check) by a single probe round after it.
    claimer = third.spawn(
        [sys.executable, "-c", _CLAIMER, "jup-lone", "0", "3", "4.5"],
        "claimer",
        env={"PYTHONPATH": str(REPO)},
    )
    claimer.wait_for_line("done", 15)
    time.sleep(4.5)  # the second probe round, at about 6-7 s
    output = runner.process.output()
    assert output.count("probing jup-lone.local again") == 2, output[-4000:]
    # Never withdrawn, never renamed; and hubd's records announced again after each check
    # flushed the claimed address from the peer's cache.
    assert runner.statuses()[first:] == []
    netns.wait_until(lambda: peer.resolve("jup-lone.local") == [LAN_V4], 10)
