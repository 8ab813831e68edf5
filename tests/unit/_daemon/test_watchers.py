"""The monitor's probes: the proxy first, because the hub's probe goes through it."""

from __future__ import annotations

from hubd._daemon.watchers import Monitor
from hubd.timing import Timing


def make_monitor(proxy: list[bool | None], hub: list[bool | None]) -> tuple[Monitor, list[str]]:
    seen: list[str] = []

    def probe_hub() -> bool | None:
        seen.append("hub-probe")
        return hub.pop(0)

    monitor = Monitor(
        Timing(health_failures=3),
        ping=lambda: True,
        probe=probe_hub,
        on_engine_lost=lambda: seen.append("engine-lost"),
        on_hub_hung=lambda: seen.append("hub-hung"),
        probe_proxy=lambda: proxy.pop(0),
        on_proxy_hung=lambda: seen.append("proxy-hung"),
    )
    return monitor, seen


def test_a_silent_proxy_is_hung_and_the_hub_is_not_blamed() -> None:
    monitor, seen = make_monitor(proxy=[False, False, False], hub=[])
    for _ in range(3):
        monitor.tick()
    assert seen == ["proxy-hung"]


def test_a_silent_hub_behind_a_healthy_proxy_is_hung() -> None:
    monitor, seen = make_monitor(proxy=[True, True, True], hub=[False, False, False])
    for _ in range(3):
        monitor.tick()
    assert seen == ["hub-probe", "hub-probe", "hub-probe", "hub-hung"]


def test_one_good_answer_resets_the_count() -> None:
    monitor, seen = make_monitor(proxy=[False, False, True, False, False, None], hub=[True, None])
    for _ in range(6):
        monitor.tick()
    assert "proxy-hung" not in seen
