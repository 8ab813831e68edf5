"""The daemon's upgrade runner: a window's check or upgrade, recorded for the status; the
upgrader is a stand-in (the stack's own is tested against a real engine)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from hubd.config import Config
from hubd.timing import Timing

if TYPE_CHECKING:
    from hubd.daemon import Daemon
    from hubd.stack import Stack
    from hubd.stack.upgrade import UpgradePlan, Upgrader

T = TypeVar("T")


class FakeUpgrader:
    """Stands in for the stack's upgrader: the daemon's glue is what is tested here."""

    def __init__(self, plan: Any, fail: Exception | None = None) -> None:
        self.plan_value, self.fail = plan, fail
        self.calls: list[str] = []

    def plan(self, pull: bool) -> Any:
        self.calls.append(f"plan pull={pull}")
        return self.plan_value

    def apply(self, plan: Any, deadline_s: float) -> None:
        self.calls.append("apply")
        if self.fail is not None:
            raise self.fail


def make_daemon(tmp_path: Path, mode: str, upgrader: FakeUpgrader) -> Daemon:
    from hubd.daemon import Daemon
    from hubd.paths import Paths

    paths = Paths(tmp_path / "etc", tmp_path / "state", tmp_path / "run", tmp_path / "log")
    daemon = Daemon(paths, tmp_path / "config.toml", Config(auto_upgrade=mode), Timing())

    # No engine and no stack: the fake upgrader, which needs none, stands in for the stack's.
    def exclusive(action: Callable[[Stack], T]) -> T:
        return action(cast("Stack", None))

    daemon.supervisor.exclusive = exclusive  # type: ignore[method-assign]
    daemon.upgrades.upgrader = lambda stack: cast("Upgrader", upgrader)  # type: ignore[method-assign]
    return daemon


def newer_plan() -> UpgradePlan:
    from hubd.stack.pins import ImagePins
    from hubd.stack.upgrade import Change, UpgradePlan

    change = Change("hub image: jupyterhub", "5.4.6", "6.1.1")
    return UpgradePlan(ImagePins(hub_image="a"), ImagePins(hub_image="b"), (change,))


@pytest.mark.parametrize("mode", ["check", "install"])
def test_the_window_run_checks_and_installs_only_when_told(tmp_path: Path, mode: str) -> None:
    upgrader = FakeUpgrader(newer_plan())
    daemon = make_daemon(tmp_path, mode, upgrader)
    daemon.upgrades.run()
    assert upgrader.calls == ["plan pull=True", *(["apply"] if mode == "install" else [])]
    update = daemon.upgrades.update
    assert update.available is (mode == "check")
    assert update.changes == (
        () if mode == "install" else ("hub image: jupyterhub: 5.4.6 -> 6.1.1",)
    )
    if mode == "install":
        assert update.last_ok and "5.4.6 -> 6.1.1" in (update.last_result or "")


def test_a_rolled_back_window_upgrade_is_told_and_the_update_stays_available(
    tmp_path: Path,
) -> None:
    from hubd.stack.upgrade import UpgradeRolledBack

    failure = UpgradeRolledBack("the upgrade was rolled back ...: the login page does not render")
    daemon = make_daemon(tmp_path, "install", FakeUpgrader(newer_plan(), failure))
    daemon.upgrades.run()
    assert daemon.upgrades.update.available and daemon.upgrades.update.last_ok is False
    assert daemon.upgrades.update.last_result == str(failure)


def test_the_loop_starts_one_run_when_due(tmp_path: Path) -> None:
    upgrader = FakeUpgrader(newer_plan())
    daemon = make_daemon(tmp_path, "check", upgrader)
    now = datetime.now()
    daemon.upgrades.schedule.window = (
        (now - timedelta(hours=1)).time(),
        (now + timedelta(hours=1)).time(),
    )
    daemon.upgrades.maybe_start()
    assert daemon.upgrades.thread is not None
    daemon.upgrades.thread.join(timeout=10)
    daemon.upgrades.maybe_start()  # the same window: not again
    assert upgrader.calls == ["plan pull=True"]
