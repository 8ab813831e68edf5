"""Backups' pure parts: the schedule decision, the password and record files, the target
check, the restore plan's words, the tray's view of the backup status."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import pytest

from hubd._tray.state import BackupView
from hubd.backup import keys
from hubd.backup.engine import check_target
from hubd.backup.restore import Change, RestorePlan
from hubd.backup.schedule import Policy, decide
from hubd.errors import BackupError
from hubd.status import BackupStatus

DAY = 86400.0
POLICY = Policy(target="/mnt/usb", interval_s=DAY, warn_after_s=2 * DAY, retry_after_failure_s=3600)
NOW = 1_000_000_000.0


def test_nothing_is_scheduled_without_a_target_or_an_interval() -> None:
    for policy in (Policy(None, DAY, 2 * DAY, 3600), Policy("/mnt/usb", 0, 2 * DAY, 3600)):
        decision = decide(keys.BackupRecord(), policy, NOW, running=False)
        assert not decision.run and math.isinf(decision.wait_s) and not decision.overdue


def test_the_first_backup_runs_at_once_and_the_next_one_a_day_later() -> None:
    assert decide(keys.BackupRecord(), POLICY, NOW, running=False).run
    done = keys.BackupRecord(last_attempt_at=NOW, last_success_at=NOW, first_attempt_at=NOW)
    later = decide(done, POLICY, NOW + 3600, running=False)
    assert not later.run and later.wait_s == pytest.approx(DAY - 3600)
    assert decide(done, POLICY, NOW + DAY, running=False).run


def test_a_running_backup_is_not_started_twice() -> None:
    assert not decide(keys.BackupRecord(), POLICY, NOW, running=True).run


def test_a_failure_is_retried_after_the_retry_delay_not_in_a_loop() -> None:
    failed = keys.BackupRecord(
        last_attempt_at=NOW, last_success_at=NOW - 2 * DAY, first_attempt_at=NOW - 9 * DAY
    )
    soon = decide(failed, POLICY, NOW + 60, running=False)
    assert not soon.run and soon.wait_s == pytest.approx(3600 - 60)
    assert decide(failed, POLICY, NOW + 3600, running=False).run


def test_overdue_after_the_warning_time_counting_from_the_first_try_if_none_succeeded() -> None:
    good = keys.BackupRecord(last_attempt_at=NOW, last_success_at=NOW, first_attempt_at=NOW)
    assert not decide(good, POLICY, NOW + 2 * DAY - 1, running=False).overdue
    assert decide(good, POLICY, NOW + 2 * DAY + 1, running=False).overdue
    never = keys.BackupRecord(last_attempt_at=NOW, first_attempt_at=NOW - 3 * DAY)
    assert decide(never, POLICY, NOW + 10, running=False).overdue
    no_warning = Policy("/mnt/usb", DAY, 0, 3600)
    assert not decide(never, no_warning, NOW + 10, running=False).overdue


def test_the_loop_wakes_up_in_time_to_warn() -> None:
    # Interval longer than the warning time: the wake-up comes for the warning.
    policy = Policy("/mnt/usb", 7 * DAY, 2 * DAY, 3600)
    good = keys.BackupRecord(last_attempt_at=NOW, last_success_at=NOW, first_attempt_at=NOW)
    decision = decide(good, policy, NOW + DAY, running=False)
    assert decision.wait_s == pytest.approx(DAY + 1)


def test_the_password_is_made_once_for_the_owner_only(tmp_path: Path) -> None:
    path = keys.password_file(tmp_path)
    password = keys.create_password(path)
    assert len(password) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.read_password(path) == password
    with pytest.raises(FileExistsError):
        keys.create_password(path)


def test_a_missing_password_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="copy the password you kept"):
        keys.read_password(tmp_path / "nope")


def test_the_record_round_trips_and_tolerates_junk(tmp_path: Path) -> None:
    assert keys.load_record(tmp_path) == keys.BackupRecord()
    record = keys.BackupRecord(last_attempt_at=1.0, last_error="disk full", last_target="/x")
    keys.save_record(tmp_path, record)
    assert keys.load_record(tmp_path) == record
    (keys.backup_dir(tmp_path) / keys.RECORD_FILE_NAME).write_text("[1, 2]")
    assert keys.load_record(tmp_path) == keys.BackupRecord()


def test_one_backup_at_a_time(tmp_path: Path) -> None:
    busy = pytest.raises(BackupError, match="already running")
    with keys.exclusive(tmp_path), busy, keys.exclusive(tmp_path):
        pass


def test_targets_must_be_existing_absolute_folders(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no backup target"):
        check_target(None)
    with pytest.raises(BackupError, match="absolute"):
        check_target("backups")
    with pytest.raises(BackupError, match="plug in or mount"):
        check_target(str(tmp_path / "unplugged"))
    assert check_target(str(tmp_path)) == tmp_path


def test_the_restore_plan_says_what_it_replaces_and_what_it_creates(tmp_path: Path) -> None:
    plan = RestorePlan(tmp_path, "abcd1234", "2026-01-02T03:04:05")
    plan.changes = [
        Change("hubd-hub-data", "hub", "/data/hub", overwrites=True),
        Change("hubd-home-ada", "ada", "/data/users/ada", overwrites=False),
    ]
    plan.stop_hub = True
    assert plan.overwrites
    assert plan.lines() == [
        f"from backup abcd1234 of 2026-01-02T03:04:05 in {tmp_path}:",
        "stop the hub and everyone's servers while restoring, then start it again",
        "replace volume hubd-hub-data: accounts, passwords and the hub's secrets",
        "create volume hubd-home-ada: ada's files",
    ]
    plan.changes = plan.changes[1:]
    assert not plan.overwrites


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, "Backups not set up"),
        ({"target": "/mnt/usb"}, "No backup yet"),
        ({"target": "/mnt/usb", "age_s": 300}, "Last backup: 5 min ago"),
        (
            {"target": "/mnt/usb", "age_s": 3 * 86400, "overdue": True},
            "Last backup: 3 days ago (overdue)",
        ),
        ({"target": "/mnt/usb", "age_s": 300, "last_error": "disk full"}, "Last backup FAILED"),
        ({"target": "/mnt/usb", "running": True}, "Backing up now…"),
        ({"target": 5, "age_s": "old", "overdue": "yes"}, "Backups not set up"),
    ],
)
def test_the_tray_words_for_the_backup_status(raw: object, words: str) -> None:
    assert BackupView.of(BackupStatus.from_json(raw)).words == words
