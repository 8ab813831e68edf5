"""The guard's packet handling: what reaches the advertiser, and its CPU budget."""

from __future__ import annotations

from hubd._mdns import wire
from hubd._mdns.guard import CpuBudget, MulticastGuard
from tests import mdns_packets as packets


def test_only_well_formed_packets_reach_the_handler() -> None:
    seen: list[wire.Message] = []
    guard = MulticastGuard(lambda message, sender: seen.append(message), lambda k, m: None)
    try:
        for data in (packets.pointer_loop(), packets.long_name(), packets.huge_counts()):
            guard.handle(data, "198.51.100.1")
        assert seen == []
        guard.handle(packets.malformed_a(), "198.51.100.1")
        assert seen[-1].records() == ()  # the packet came, the malformed record did not
        guard.handle(packets.normal_response(), "fe80::1%eth0")
        assert len(seen[-1].records()) == 2
    finally:
        guard.close()


def test_budget_drops_packets_for_the_rest_of_the_window() -> None:
    now, cpu = [0.0], [0.0]
    budget = CpuBudget(limit_s=0.03, window_s=1.0, clock=lambda: now[0], cpu=lambda: cpu[0])
    allowed = 0
    for _ in range(100):  # 100 packets of 1 ms each within one window
        if budget.allows():
            started = budget.start()
            cpu[0] += 0.001
            budget.charge(started)
            allowed += 1
    assert allowed == 30 and budget.dropped == 70
    now[0] = 1.0  # next window: allowed again
    assert budget.allows() and budget.dropped == 0
