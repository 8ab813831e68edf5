"""When the daemon backs up, and when it is time to warn: one pure decision."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hubd.backup.keys import BackupRecord


@dataclass(frozen=True)
class Policy:
    target: str | None
    interval_s: float  # 0: no scheduled backups
    warn_after_s: float  # 0: never warn
    retry_after_failure_s: float


@dataclass(frozen=True)
class Decision:
    run: bool  # start a backup now
    wait_s: float  # until the next decision is due (math.inf: nothing scheduled)
    overdue: bool  # no good backup for longer than the policy allows


def age_s(record: BackupRecord, now: float) -> float | None:
    """Seconds since the last good backup, or None if there never was one."""
    return None if record.last_success_at is None else max(0.0, now - record.last_success_at)


def is_overdue(record: BackupRecord, policy: Policy, now: float) -> bool:
    if policy.warn_after_s <= 0 or not policy.target:
        return False
    since = record.last_success_at or record.first_attempt_at
    return since is not None and now - since > policy.warn_after_s


def decide(record: BackupRecord, policy: Policy, now: float, running: bool) -> Decision:
    overdue = is_overdue(record, policy, now)
    if not policy.target or policy.interval_s <= 0 or running:
        return Decision(run=False, wait_s=math.inf, overdue=overdue)
    due = (record.last_success_at or -math.inf) + policy.interval_s
    failed_last = record.last_attempt_at is not None and (
        record.last_success_at is None or record.last_attempt_at > record.last_success_at
    )
    if failed_last:
        assert record.last_attempt_at is not None
        due = max(due, record.last_attempt_at + policy.retry_after_failure_s)
    if now >= due:
        return Decision(run=True, wait_s=0.0, overdue=overdue)
    wait = due - now
    if policy.warn_after_s > 0 and not overdue:
        since = record.last_success_at or record.first_attempt_at
        if since is not None:
            # Wake up when the warning becomes due, so it is not late by a whole interval.
            wait = min(wait, max(0.0, since + policy.warn_after_s - now) + 1.0)
    return Decision(run=False, wait_s=wait, overdue=overdue)
