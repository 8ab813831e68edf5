"""The guard's packet handling: what reaches the advertiser; the CPU budgets of the guard
and of zeroconf's listeners."""

from __future__ import annotations

from hubd._mdns import wire
from hubd._mdns.guard import CpuBudget, MulticastGuard
from hubd._mdns.zeroconf_input import BudgetedListener, limit_zeroconf_input
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


class _Inner:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def test_zeroconf_gets_packets_only_within_its_budget() -> None:
    now, cpu = [0.0], [0.0]
    budget = CpuBudget(limit_s=0.01, window_s=1.0, clock=lambda: now[0], cpu=lambda: cpu[0])

    class Costly(_Inner):
        def datagram_received(self, data: bytes, addr: object) -> None:
            super().datagram_received(data, addr)
            cpu[0] += 0.004  # each packet costs zeroconf 4 ms

    costly = Costly()
    listener = BudgetedListener(costly, budget)
    for _ in range(10):
        listener.datagram_received(b"x", ("198.51.100.1", 5353))
    assert len(costly.received) == 3  # 0, 4, 8 ms spent before each: the 4th finds 12 ms
    now[0] = 1.0
    listener.datagram_received(b"y", ("198.51.100.1", 5353))
    assert costly.received[-1] == b"y"


def test_every_zeroconf_listener_is_put_behind_the_budget() -> None:
    from zeroconf import Zeroconf

    zc = Zeroconf(interfaces=["127.0.0.1"])
    try:
        assert limit_zeroconf_input(zc, 0.015, 10.0) >= 1
        assert limit_zeroconf_input(zc, 0.015, 10.0) == 0  # already wrapped: not twice
        for listener in zc.engine.protocols:
            assert listener.transport is not None
            protocol = listener.transport.transport.get_protocol()
            assert isinstance(protocol, BudgetedListener) and protocol.inner is listener
    finally:
        zc.close()


def test_a_burst_is_read_whole_while_a_sustained_flood_stays_within_the_rate() -> None:
    now, cpu = [0.0], [0.0]
    budget = CpuBudget(
        limit_s=0.01, window_s=1.0, burst_s=0.05, clock=lambda: now[0], cpu=lambda: cpu[0]
    )

    def packets(count: int, cost_s: float) -> int:
        allowed = 0
        for _ in range(count):
            if budget.allows():
                started = budget.start()
                cpu[0] += cost_s
                budget.charge(started)
                allowed += 1
        return allowed

    # Start-up: 40 packets of 1 ms at once, more than one second's rate, all read.
    assert packets(40, 0.001) == 40
    # A flood of 1 ms packets for 10 s: the rest of the burst, then about the rate.
    read = 0
    for _ in range(1000):
        now[0] += 0.01
        read += packets(10, 0.001)
    assert 10 + 100 - 2 <= read <= 10 + 100 + 2  # 10 ms left of the burst + 10 s x 10 ms/s
