"""Backups and restore of a hubd stack with restic in a helper container.

`BackupEngine.backup()` makes one backup; `Restorer` plans and carries out a restore;
`schedule.decide()` says when the daemon backs up next; `summary()` is what status shows.
"""

from __future__ import annotations

import time
from pathlib import Path

from hubd.backup.engine import BackupEngine, BackupResult
from hubd.backup.keys import BackupRecord, load_record, password_file
from hubd.backup.restore import RestorePlan, Restorer
from hubd.backup.schedule import Decision, Policy, age_s, decide, is_overdue
from hubd.config import Config
from hubd.status import BackupStatus
from hubd.timing import Timing


def policy_of(config: Config, timing: Timing) -> Policy:
    return Policy(
        target=config.backup_target,
        interval_s=float(config.backup_interval),
        warn_after_s=float(config.backup_warn_after),
        retry_after_failure_s=timing.backup_retry_after_failure_s,
    )


def summary(state_dir: Path, config: Config, timing: Timing, running: bool = False) -> BackupStatus:
    """The backup part of `hubd status` and the tray's status."""
    record = load_record(state_dir)
    now = time.time()
    return BackupStatus(
        target=config.backup_target,
        scheduled=bool(config.backup_target) and config.backup_interval > 0,
        last_success_at=record.last_success_at,
        age_s=age_s(record, now),
        last_error=record.last_error,
        overdue=is_overdue(record, policy_of(config, timing), now),
        running=running,
        password_file=str(password_file(state_dir)),
    )


__all__ = [
    "BackupEngine",
    "BackupRecord",
    "BackupResult",
    "Decision",
    "Policy",
    "RestorePlan",
    "Restorer",
    "decide",
    "load_record",
    "policy_of",
    "summary",
]
