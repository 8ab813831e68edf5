"""The daemon's upgrades: `hubd upgrade` through the control socket, the automatic ones in the
maintenance window (when: autoupgrade.py), and what is known about newer versions (the
status' `update`, which the tray shows).

An upgrade runs with the supervisor's stack to itself (`Supervisor.exclusive`): no reconcile
pass restarts or rewires the hub under it. The automatic run is a thread of its own, started
from the daemon's loop, so the loop keeps supervising meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from hubd._daemon.autoupgrade import AutoUpgradeSchedule, parse_window
from hubd.config import Config
from hubd.errors import HubdError
from hubd.paths import Paths
from hubd.stack.pins import PinStore
from hubd.stack.upgrade import UpgradePlan, Upgrader, UpgradeResult
from hubd.status import UpdateView
from hubd.timing import Timing

if TYPE_CHECKING:
    from hubd._daemon.supervisor import Supervisor
    from hubd.stack import Stack

log = logging.getLogger("hubd")


def upgraded_line(plan: UpgradePlan) -> str:
    """What the status says after an upgrade went through."""
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"upgraded on {when}: " + "; ".join(str(c) for c in plan.changes)


class Upgrades:
    """Plans and applies upgrades for the daemon, and runs the automatic ones when due."""

    def __init__(
        self,
        config: Config,
        paths: Paths,
        timing: Timing,
        supervisor: Supervisor,
        wake: Callable[[], None],
    ) -> None:
        self.paths = paths
        self.timing = timing
        self.supervisor = supervisor
        self.wake = wake  # the daemon's loop: a run changed the stack, look again now
        self.update = UpdateView()
        self._update_lock = threading.Lock()
        self.schedule = AutoUpgradeSchedule(
            config.auto_upgrade, parse_window(config.upgrade_window)
        )
        self.thread: threading.Thread | None = None

    def reload(self, config: Config) -> None:
        self.schedule.mode = config.auto_upgrade
        self.schedule.window = parse_window(config.upgrade_window)

    def upgrader(self, stack: Stack) -> Upgrader:
        pins = PinStore(self.paths.image_pins_file, stack.config.stack_name)
        return Upgrader(stack, pins, self.paths.log_dir)

    def record(
        self, plan: UpgradePlan | None = None, result: str | None = None, ok: bool = False
    ) -> None:
        """Into the status' `update`: what a plan found, and how the last upgrade went."""
        with self._update_lock:
            update = self.update
            if plan is not None:
                update = dataclasses.replace(
                    update,
                    available=not plan.up_to_date,
                    changes=tuple(str(c) for c in plan.changes),
                    checked_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                )
            if result is not None:
                update = dataclasses.replace(update, last_result=result, last_ok=ok)
            self.update = update

    # ------------------------------------------------------------------ asked for

    def plan(self, pull: bool) -> UpgradePlan:
        plan = self.supervisor.exclusive(lambda stack: self.upgrader(stack).plan(pull))
        self.record(plan)
        return plan

    def apply(self, plan: UpgradePlan) -> UpgradeResult:
        """Apply a plan `hubd upgrade` made; a failure is recorded and raised."""
        try:
            result = self._apply(plan)
        except HubdError as exc:
            self.record(result=str(exc))
            raise
        finally:
            self.wake()
        self._record_done(plan)
        return result

    def _apply(self, plan: UpgradePlan) -> UpgradeResult:
        deadline_s = self.timing.upgrade_gate_deadline_s
        return self.supervisor.exclusive(lambda stack: self.upgrader(stack).apply(plan, deadline_s))

    def _record_done(self, plan: UpgradePlan) -> None:
        self.record(UpgradePlan(plan.target, plan.target), upgraded_line(plan), ok=True)

    # ------------------------------------------------------------------ automatic

    def maybe_start(self) -> None:
        """From the daemon's loop: start the window's run when it is due and none runs."""
        running = self.thread is not None and self.thread.is_alive()
        now = datetime.now()  # the window is in local time
        if running or not self.schedule.due(now):
            return
        self.schedule.started(now)
        self.thread = threading.Thread(target=self.run, name="hubd-auto-upgrade", daemon=True)
        self.thread.start()

    def run(self) -> None:
        """A check, and with `auto_upgrade = "install"` the upgrade, in the window."""
        try:
            plan = self.plan(pull=True)
            if plan.up_to_date:
                log.info("automatic upgrade check: up to date")
                return
            log.warning("update available: %s", "; ".join(str(c) for c in plan.changes))
            if not self.schedule.installs:
                return
            self._apply(plan)
            self._record_done(plan)
            log.warning("automatic upgrade done: %s", "; ".join(str(c) for c in plan.changes))
        except HubdError as exc:
            self.record(result=str(exc))
            log.error("automatic upgrade: %s", exc)
        finally:
            self.wake()


__all__ = ["Upgrades", "upgraded_line"]
