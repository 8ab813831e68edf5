"""The daemon's side of backups: scheduled runs on a thread of their own, "Back up now", and
the status the CLI and the tray show. The decision when to run is `schedule.decide`."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubd.backup import summary
from hubd.backup.engine import BackupEngine
from hubd.backup.keys import load_record
from hubd.backup.schedule import decide
from hubd.config import Config
from hubd.errors import BackupError, HubdError
from hubd.stack import Stack
from hubd.status import BackupStatus
from hubd.timing import Timing

log = logging.getLogger(__name__)


class BackupScheduler:
    def __init__(
        self,
        state_dir: Path,
        config_file: Path,
        timing: Timing,
        stack: Callable[[], Stack | None],
        wake: Callable[[], None],
    ) -> None:
        self.state_dir = state_dir
        self.config_file = config_file
        self.timing = timing
        self._stack = stack
        self._wake = wake
        self._running = threading.Lock()  # held while a backup runs, scheduled or asked for
        self._thread: threading.Thread | None = None
        self._overdue_logged = False

    def _engine(self, config: Config) -> BackupEngine:
        stack = self._stack()
        if stack is None:
            raise BackupError("cannot back up now: the Docker engine is not connected")
        return BackupEngine(stack, config, self.state_dir, self.config_file)

    @property
    def running(self) -> bool:
        return self._running.locked()

    def tick(self, config: Config) -> float:
        """One decision; starts a scheduled backup if due. Returns seconds until the next one."""
        from hubd.backup import policy_of

        record = load_record(self.state_dir)
        decision = decide(record, policy_of(config, self.timing), time.time(), self.running)
        if decision.overdue and not self._overdue_logged:
            log.warning(
                "no backup succeeded for over %s h (last error: %s)",
                round(config.backup_warn_after / 3600, 1),
                record.last_error or "none",
            )
        self._overdue_logged = decision.overdue
        if not decision.run:
            return decision.wait_s
        if self._stack() is None:
            return self.timing.reconcile_interval_s  # the engine is away: ask again later
        if not self._running.acquire(blocking=False):
            return math.inf  # one is running; its end wakes the loop
        self._thread = threading.Thread(
            target=self._scheduled, args=(config,), name="hubd-backup", daemon=True
        )
        self._thread.start()
        return math.inf

    def _scheduled(self, config: Config) -> None:
        """Runs on its own thread, holding `_running` (taken by `tick`)."""
        try:
            self._engine(config).backup()
        except HubdError:
            pass  # the engine logged the one line and recorded it for status and the tray
        except Exception:
            log.exception("scheduled backup failed")
        finally:
            self._running.release()
            self._wake()

    def run_now(self, config: Config, target: str | None) -> dict[str, Any]:
        """A backup asked for (CLI, tray); answered when done."""
        if not self._running.acquire(blocking=False):
            raise BackupError("a backup is already running; try again when it is done")
        try:
            return self._engine(config).backup(target).to_json()
        finally:
            self._running.release()
            self._wake()

    def status(self, config: Config) -> BackupStatus:
        return summary(self.state_dir, config, self.timing, running=self.running)

    def close(self, timeout_s: float = 1.0) -> None:
        # A backup is not worth delaying shutdown: restic's repository survives a kill.
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
