"""What crafted mDNS packets cost hubd: decoding + inspecting one, and a flood of them.

    sudo python -m bench.bench_mdns_flood [--rate 1000] [--seconds 5]

1. In this process: microseconds to decode (`wire.decode`) and inspect (`claim.inspect`)
   each crafted packet of tests/mdns_packets.py, against an ordinary response (the ratio).
2. On a LAN of network namespaces (tests/integration/netns.py): `python -m hubd.mdns`
   advertises in one host; another host multicasts crafted packets at `--rate` per second
   for `--seconds`, each with a new message ID. The CPU time (user + system, /proc/PID/stat)
   of the whole hubd process — its guard, its zeroconf instance, which parses every packet
   too, and its threads — over the flood, as a share of one core, next to the same window
   with no flood; with the input CPU budgets (`mdns_input_cpu_per_s`) as shipped and, as
   the baseline in the same run, out of the way.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from hubd._mdns import claim as mdns_claim
from hubd._mdns import wire
from tests import mdns_packets as packets
from tests.integration import netns

REPO = Path(__file__).resolve().parents[1]
CLAIM = mdns_claim.Claim(
    ("jupyter", "local"),
    ("JupyterHub on box", "_http", "_tcp", "local"),
    (ipaddress.ip_address("192.0.2.10"),),
    8000,
)


def _as_response(data: bytes) -> bytes:
    return data[:2] + (0x8400).to_bytes(2, "big") + data[4:]


KINDS: dict[str, Callable[[], bytes]] = {
    "normal response (A+AAAA)": packets.normal_response,
    "3-byte A for jupyter.local": packets.malformed_a,
    "TXT for jupyter.local": packets.txt_for,
    "forward pointer": packets.forward_pointer,
    "pointer loop": packets.pointer_loop,
    "300-byte name": packets.long_name,
    "65535 answers claimed": packets.huge_counts,
    "worst case, query": packets.worst_case,
    "worst case, response": lambda: _as_response(packets.worst_case()),
}


def per_packet_us(data: bytes, rounds: int = 2000) -> float:
    own: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset()
    started = time.perf_counter()
    for _ in range(rounds):
        try:
            message = wire.decode(data)
        except wire.WireError:
            continue
        mdns_claim.inspect(message, CLAIM, from_self=False, own_addresses=own)
    return (time.perf_counter() - started) / rounds * 1e6


_SENDER = textwrap.dedent("""
    import socket, sys, time
    from tests import mdns_packets as packets
    kind, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    data = {"malformed": packets.malformed_a(("jupyter", "local")),
            "worst-query": packets.worst_case(),
            "worst-response": (lambda d: d[:2] + b"\\x84\\x00" + d[4:])(packets.worst_case())}[kind]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.0.2.30"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    batch = max(1, rate // 100)
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        for i in range(batch):
            # A new message ID each time: zeroconf skips a packet identical to a recent one,
            # an attacker would not send those.
            ident = ((sent + i) % 65535 + 1).to_bytes(2, "big")
            sock.sendto(ident + data[2:], ("224.0.0.251", 5353))
        sent += batch
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    print("sent", sent, "in", round(time.monotonic() - start, 2), flush=True)
""")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FLOODS = ("idle", "malformed", "worst-query", "worst-response")


def flood(rate: int, seconds: float, timing: str) -> dict[str, tuple[float, int]]:
    """CPU share of one core used by hubd during each flood, and packets sent."""
    results: dict[str, tuple[float, int]] = {}
    with netns.lab("flood") as lab:
        adv = lab.add_host("adv", "192.0.2.10", "2001:db8::10")
        sender = lab.add_host("third", "192.0.2.30", "2001:db8::30")
        env = {"PYTHONPATH": str(REPO)}
        hubd = adv.spawn(
            [sys.executable, "-m", "hubd.mdns", "--json"],
            "hubd",
            env={**env, "HUBD_TIMING": timing},
        )
        hubd.wait_for_line('"state": "advertising"', 30)
        pid = hubd.popen.pid
        time.sleep(2)  # zeroconf's start-up announcements
        for kind in FLOODS:
            before, started = cpu_seconds(pid), time.monotonic()
            sent = 0
            if kind == "idle":
                time.sleep(seconds)
            else:
                argv = [sys.executable, "-c", _SENDER, kind, str(rate), str(seconds)]
                process = sender.spawn(argv, f"sender-{kind}", env=env)
                line = process.wait_for_line(r"sent (\d+)", seconds + 30)
                sent = int(line.group(1))
            elapsed = time.monotonic() - started
            results[kind] = ((cpu_seconds(pid) - before) / elapsed, sent)
            time.sleep(1)
        output = hubd.output()
        assert '"hostname": "jupyter.local"' in output
        assert '"state": "probing"' not in output.split('"state": "advertising"', 1)[1]
        hubd.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="packets per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    per_packet_us(packets.normal_response())  # warm-up: imports, caches
    normal = per_packet_us(packets.normal_response())
    print("| packet | bytes | decode + inspect | ratio to normal |")
    print("|---|---|---|---|")
    for label, make in KINDS.items():
        data = make()
        cost = normal if make is packets.normal_response else per_packet_us(data)
        print(f"| {label} | {len(data)} | {cost:.1f} µs | {cost / normal:.1f} |")

    if os.geteuid() != 0 or netns.missing_tools():
        print("flood: needs root and the namespace tools; skipped", file=sys.stderr)
        return 1
    # Baseline in the same run: the budgets out of the way (1000 CPU-seconds per second).
    unlimited = flood(args.rate, args.seconds, "mdns_input_cpu_per_s=1000")
    shipped = flood(args.rate, args.seconds, "")
    print()
    flood_label = f"flood ({args.rate}/s for {args.seconds:.0f} s), packets sent"
    print(f"| {flood_label} | hubd CPU, no budgets | with the budgets | ratio |")
    print("|---|---|---|---|")
    for kind in FLOODS:
        (off, sent), (on, _) = unlimited[kind], shipped[kind]
        ratio = f"{on / off:.2f}" if off > 0.001 else "—"
        print(f"| {kind}, {sent} | {off * 100:.1f} % | {on * 100:.1f} % | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
