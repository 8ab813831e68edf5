"""docs/service.md's watchdog figures are the code's: the ping period and the
heartbeat's freshness come from the unit's WatchdogSec through sdnotify, not from the text."""

from __future__ import annotations

import re
from pathlib import Path

from hubd._daemon.sdnotify import Heartbeat, Notifier

ROOT = Path(__file__).resolve().parents[3]


def test_the_documented_watchdog_interval_is_the_codes() -> None:
    unit = (ROOT / "packaging/systemd/system/hubd.service").read_text()
    documented = re.search(r"^WatchdogSec=(\d+)s$", unit, re.M)
    assert documented is not None, "no WatchdogSec= in the unit"
    watchdog_s = int(documented.group(1))
    notifier = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": str(watchdog_s * 10**6)})
    heartbeat = Heartbeat(notifier)
    assert heartbeat.interval_s is not None
    ping_every_s = heartbeat.interval_s / 2  # the thread pings twice per interval
    fresh_within_s = heartbeat.interval_s
    row = next(
        line
        for line in (ROOT / "docs/service.md").read_text().splitlines()
        if line.startswith(f"| `WatchdogSec={watchdog_s}s`")
    )
    assert f"pings every {ping_every_s:g} s" in row, row
    assert f"within the last {fresh_within_s:g} s" in row, row
