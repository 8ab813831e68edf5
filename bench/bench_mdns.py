"""How fast the LAN learns about hubd's name, compared with `avahi-publish -a` in the same run.

    sudo python bench/bench_mdns.py [--rounds 5] [--json results.json]

On a LAN of network namespaces (tests/integration/netns.py: TEST-NET addresses only, nothing
leaves the machine), a `peer` host runs avahi-daemon and resolves names with `getent` through
nss-mdns, like any Linux laptop. The advertiser host runs, in alternating rounds:
- hubd: `python -m hubd.mdns --name <n>` (launch to resolvable includes Python's start-up);
- avahi: `avahi-publish -a -R <n>.local <address>` against an avahi-daemon already running
  there. avahi-publish does not follow address changes, so "the same job" for it is what a
  script would do: stop it and publish the new address, right when the address changes.

Three times per round, all measured at the peer:
- start:  advertiser launched -> `getent` returns its address;
- change: the address replaced (add new, delete old) -> `getent` returns only the new one;
- stop:   advertiser stopped (SIGTERM) -> the peer no longer has the name: the start of the
          first `getent` that finds nothing (that lookup itself then waits out avahi's
          resolver timeout, which is not the advertiser's doing and is not counted).
A lookup that is already running when the name appears returns as soon as the answer arrives,
so polling does not add its own delay beyond a process start (~5 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration import netns

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = "192.0.2.10", "192.0.2.11"


def _poll(check: Callable[[], bool], timeout: float) -> float:
    return float(netns.wait_until(check, timeout, interval=0.0))


def _forgotten_after(peer: netns.Host, name: str, since: float, timeout: float = 60) -> float:
    """Seconds from `since` to the start of the first lookup that finds nothing."""
    found: list[str] = []
    while time.monotonic() - since < timeout:
        started = time.monotonic()
        found = peer.resolve(name, timeout=15)
        if not found:
            return started - since
    raise AssertionError(f"{name} still resolves to {found} after {timeout} s")


class Hubd:
    label = "hubd"

    def __init__(self, host: netns.Host, name: str) -> None:
        self.host, self.name = host, name

    def start(self) -> None:
        env = {"PYTHONPATH": str(REPO)}
        self.process = self.host.spawn(
            [sys.executable, "-m", "hubd.mdns", "--name", self.name, "--json"], "hubd", env=env
        )
        # When Advertiser.start() ran (its first status line): the rest of "start" is
        # Python's own start-up and imports, which the daemon pays once, not per advertiser.
        self.started_at: float | None = None

        def note_start() -> None:
            self.process.wait_for_line('"state": "probing"', 30)
            self.started_at = time.monotonic()

        self._noter = threading.Thread(target=note_start, daemon=True)
        self._noter.start()

    def address_changed(self) -> None:
        pass  # hubd notices by itself

    def stop(self) -> None:
        if self.process.popen.poll() is None and self.process.stop(timeout=10) != 0:
            raise AssertionError("hubd did not exit cleanly on SIGTERM")


class AvahiPublish:
    label = "avahi-publish"

    def __init__(self, host: netns.Host, name: str) -> None:
        self.host, self.name = host, name

    def _publish(self, address: str) -> None:
        self.process = self.host.spawn(
            ["avahi-publish", "-a", "-R", f"{self.name}.local", address], "avahi-publish"
        )

    def start(self) -> None:
        self._publish(OLD)

    def address_changed(self) -> None:
        self.process.stop(timeout=10)
        self._publish(NEW)

    def stop(self) -> None:
        self.process.stop(timeout=10)


def one_round(
    adv: netns.Host, peer: netns.Host, kind: type[Hubd | AvahiPublish], name: str
) -> dict[str, float]:
    advertiser = kind(adv, name)
    fqdn = f"{name}.local"
    result: dict[str, float] = {}
    try:
        began = time.monotonic()
        advertiser.start()
        _poll(lambda: peer.resolve(fqdn) == [OLD], 30)
        resolved = time.monotonic()
        result["start"] = resolved - began
        if isinstance(advertiser, Hubd):
            advertiser._noter.join(5)
            if advertiser.started_at is not None:
                result["start()"] = resolved - advertiser.started_at

        changed = time.monotonic()
        adv.ip("addr", "add", f"{NEW}/24", "dev", "eth0")
        adv.ip("addr", "del", f"{OLD}/24", "dev", "eth0")
        advertiser.address_changed()
        _poll(lambda: peer.resolve(fqdn) == [NEW], 30)
        result["change"] = time.monotonic() - changed

        # Let the advertiser finish handling the change (hubd: zeroconf's re-announcement)
        # so that "stop" measures stopping alone.
        time.sleep(1.5)
        stopped = time.monotonic()
        advertiser.stop()
        result["stop"] = _forgotten_after(peer, fqdn, stopped)
    finally:
        advertiser.stop()
        adv.ip("addr", "replace", f"{OLD}/24", "dev", "eth0")
        adv.run(["ip", "addr", "del", f"{NEW}/24", "dev", "eth0"], check=False)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if os.geteuid() != 0 or netns.missing_tools():
        print("needs root and: " + ", ".join(netns._TOOLS), file=sys.stderr)
        return 2
    figures: dict[str, dict[str, list[float]]] = {
        "hubd": {"start": [], "start()": [], "change": [], "stop": []},
        "avahi-publish": {"start": [], "change": [], "stop": []},
    }
    with netns.lab("b") as lab:
        adv = lab.add_host("adv", OLD, "2001:db8::10")
        peer = lab.add_host("peer", "192.0.2.20", "2001:db8::20")
        peer.start_avahi("peer")
        adv.start_avahi("adv")  # avahi-publish needs it; hubd runs next to it, as on a desktop
        for i in range(args.rounds):
            for kind in (Hubd, AvahiPublish):
                name = f"bench-{i}-{'h' if kind is Hubd else 'a'}"
                try:
                    got = one_round(adv, peer, kind, name)
                except AssertionError:
                    for process in lab.processes[-3:]:
                        print(f"--- {process.label}\n{process.output()[-3000:]}", file=sys.stderr)
                    raise
                for metric, value in got.items():
                    figures[kind.label][metric].append(value)
                print(
                    f"round {i + 1} {kind.label:14} "
                    + "  ".join(f"{m} {v:6.3f}s" for m, v in got.items()),
                    flush=True,
                )
    print()
    print(
        f"{'metric':8} {'hubd median':>12} {'avahi median':>13} {'ratio':>6}   "
        f"hubd min-max      avahi min-max"
    )
    summary: dict[str, dict[str, float]] = {}
    for metric in ("start", "change", "stop"):
        h, a = figures["hubd"][metric], figures["avahi-publish"][metric]
        hm, am = statistics.median(h), statistics.median(a)
        summary[metric] = {"hubd": hm, "avahi-publish": am, "ratio": hm / am}
        print(
            f"{metric:8} {hm:11.3f}s {am:12.3f}s {hm / am:6.2f}   "
            f"{min(h):.3f}-{max(h):.3f}s   {min(a):.3f}-{max(a):.3f}s"
        )
    inproc = figures["hubd"]["start()"]
    if inproc:
        print(
            f"hubd from Advertiser.start() to resolvable: median {statistics.median(inproc):.3f}s"
            f" ({min(inproc):.3f}-{max(inproc):.3f}s); the rest of 'start' is Python start-up"
        )
    if args.json:
        args.json.write_text(json.dumps({"raw": figures, "median": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
