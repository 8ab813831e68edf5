"""Opt-in automatic upgrades: the window, the schedule, and what the tray makes of
an update (menu item, notifications)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from hubd._daemon.autoupgrade import AutoUpgradeSchedule, in_window, parse_window
from hubd._tray.menu import Action, build_menu, find_item
from hubd._tray.notices import NoticeTracker
from hubd._tray.state import Snapshot
from hubd.config import Config, load_config
from hubd.errors import ConfigError
from hubd.status import Status
from hubd.timing import Timing

NIGHT = parse_window("23:30-01:00")


def test_windows_parse_and_may_pass_midnight() -> None:
    assert parse_window("03:00-05:00") == (time(3), time(5))
    assert in_window(time(4, 59), parse_window("03:00-05:00"))
    assert not in_window(time(5), parse_window("03:00-05:00"))
    assert in_window(time(23, 45), NIGHT) and in_window(time(0, 30), NIGHT)
    assert not in_window(time(12), NIGHT)


@pytest.mark.parametrize(
    ("key", "value"),
    [("upgrade_window", "3-5"), ("upgrade_window", "04:00-04:00"), ("auto_upgrade", "yes")],
)
def test_bad_values_are_refused_with_what_was_expected(tmp_path: Any, key: str, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_defaults_are_off_and_a_night_window() -> None:
    assert Config().auto_upgrade == "off"
    assert parse_window(Config().upgrade_window) == (time(3), time(5))


def test_a_run_is_due_once_per_window_and_never_when_off() -> None:
    night = datetime(2026, 5, 1, 23, 40)
    schedule = AutoUpgradeSchedule("install", NIGHT)
    assert not schedule.due(night.replace(hour=12))
    assert schedule.due(night)
    schedule.started(night)
    assert not schedule.due(night + timedelta(minutes=20))  # still the same window
    assert schedule.due(night + timedelta(days=1))  # the next night
    assert not AutoUpgradeSchedule("off", NIGHT).due(night)
    assert AutoUpgradeSchedule("check", NIGHT).due(night)
    assert not AutoUpgradeSchedule("check", NIGHT).installs


def snap(state: str = "running", **update: Any) -> Snapshot:
    return Snapshot(
        status=Status.from_json({"state": state, "url": "http://jupyter.local:8000/", **update})
    )


AVAILABLE = {"update": {"available": True, "changes": ["hub image: jupyterhub: 5.4.6 -> 6.1.1"]}}


def test_the_menu_offers_the_upgrade_only_when_one_is_available_and_the_hub_runs() -> None:
    assert find_item(build_menu(snap()), Action.UPGRADE) is None
    item = find_item(build_menu(snap(**AVAILABLE)), Action.UPGRADE)
    assert item is not None and item.enabled and item.label.startswith("Update available")
    stopped = find_item(build_menu(snap("stopped", **AVAILABLE)), Action.UPGRADE)
    assert stopped is not None and not stopped.enabled


def test_notices_for_an_update_found_and_for_how_the_upgrade_went() -> None:
    tracker = NoticeTracker(timing=Timing())
    assert tracker.update(snap()) == []
    found = tracker.update(snap(**AVAILABLE))
    assert [n.title for n in found] == ["Update available"]
    assert "5.4.6 -> 6.1.1" in found[0].message
    assert tracker.update(snap(**AVAILABLE)) == []  # told once
    done = {"update": {"last_result": "upgraded on 2026-05-02 03:10: ...", "last_ok": True}}
    assert [n.title for n in tracker.update(snap(**done))] == ["JupyterHub upgraded"]
    failed = {"update": {"last_result": "the upgrade was rolled back ...", "last_ok": False}}
    assert [n.title for n in tracker.update(snap(**failed))] == ["The upgrade did not go through"]


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


def make_daemon(tmp_path: Any, mode: str, upgrader: FakeUpgrader) -> Any:
    from hubd.daemon import Daemon
    from hubd.paths import Paths

    paths = Paths(tmp_path / "etc", tmp_path / "state", tmp_path / "run", tmp_path / "log")
    daemon = Daemon(paths, tmp_path / "config.toml", Config(auto_upgrade=mode), Timing())
    daemon.supervisor.exclusive = lambda action: action(None)  # type: ignore[method-assign]
    daemon.upgrader = lambda _stack: upgrader  # type: ignore[method-assign]
    return daemon


def newer_plan() -> Any:
    from hubd.stack.pins import ImagePins
    from hubd.stack.upgrade import Change, UpgradePlan

    change = Change("hub image: jupyterhub", "5.4.6", "6.1.1")
    return UpgradePlan(ImagePins(hub_image="a"), ImagePins(hub_image="b"), (change,))


@pytest.mark.parametrize("mode", ["check", "install"])
def test_the_window_run_checks_and_installs_only_when_told(tmp_path: Any, mode: str) -> None:
    upgrader = FakeUpgrader(newer_plan())
    daemon = make_daemon(tmp_path, mode, upgrader)
    daemon._auto_upgrade()
    assert upgrader.calls == ["plan pull=True", *(["apply"] if mode == "install" else [])]
    update = daemon.update
    assert update.available is (mode == "check")
    assert update.changes == (
        () if mode == "install" else ("hub image: jupyterhub: 5.4.6 -> 6.1.1",)
    )
    if mode == "install":
        assert update.last_ok and "5.4.6 -> 6.1.1" in update.last_result


def test_a_rolled_back_window_upgrade_is_told_and_the_update_stays_available(
    tmp_path: Any,
) -> None:
    from hubd.stack.upgrade import UpgradeRolledBack

    failure = UpgradeRolledBack("the upgrade was rolled back ...: the login page does not render")
    daemon = make_daemon(tmp_path, "install", FakeUpgrader(newer_plan(), failure))
    daemon._auto_upgrade()
    assert daemon.update.available and daemon.update.last_ok is False
    assert daemon.update.last_result == str(failure)


def test_the_loop_starts_one_run_when_due(tmp_path: Any) -> None:
    upgrader = FakeUpgrader(newer_plan())
    daemon = make_daemon(tmp_path, "check", upgrader)
    now = datetime.now()
    daemon.auto_upgrade.window = (
        (now - timedelta(hours=1)).time(),
        (now + timedelta(hours=1)).time(),
    )
    daemon._maybe_auto_upgrade()
    daemon.auto_upgrade_thread.join(timeout=10)
    daemon._maybe_auto_upgrade()  # the same window: not again
    assert upgrader.calls == ["plan pull=True"]
