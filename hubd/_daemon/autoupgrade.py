"""Opt-in automatic upgrades: when, inside the owner's maintenance window, a check or an
upgrade is due. Pure apart from the clock it is given; the daemon runs what it decides.

`auto_upgrade = "check"` looks for newer images once a day inside the window and tells (the
tray shows "Update available"); `"install"` also upgrades then, behind the same health gate
as `hubd upgrade`, and tells what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from hubd.config import parse_window

__all__ = ["AutoUpgradeSchedule", "in_window", "parse_window"]


def in_window(now: time, window: tuple[time, time]) -> bool:
    start, end = window
    if start < end:
        return start <= now < end
    return now >= start or now < end  # the window passes midnight


@dataclass
class AutoUpgradeSchedule:
    """Whether a run is due now: in the window, and none started in the last `every`."""

    mode: str
    window: tuple[time, time]
    # Once per window: longer than any window, shorter than a day.
    every: timedelta = timedelta(hours=20)
    last_run: datetime | None = None

    def due(self, now: datetime) -> bool:
        if self.mode not in ("check", "install") or not in_window(now.time(), self.window):
            return False
        return self.last_run is None or now - self.last_run >= self.every

    def started(self, now: datetime) -> None:
        self.last_run = now

    @property
    def installs(self) -> bool:
        return self.mode == "install"
