"""Opt-in automatic upgrades: the window, the schedule, and what the tray makes of
an update (menu item, notifications)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
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
def test_bad_values_are_refused_with_what_was_expected(
    tmp_path: Path, key: str, value: str
) -> None:
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


def snap(state: str = "running", /, **update: Any) -> Snapshot:
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
