"""hubd as a launchd job (macOS): plists for the daemon and the tray, launchctl.

System mode: /Library/LaunchDaemons/org.hubd.daemon.plist (root, from boot) and
/Library/LaunchAgents/org.hubd.tray.plist (the tray, in every graphical login).
User mode: both in ~/Library/LaunchAgents, loaded into the user's gui/UID domain.
The tray's "Start at login" switches this user's tray LaunchAgent on and off by itself (no
application bundle: macOS menus list .app bundles, and the LaunchAgent is how it comes back).
The templates are read and written with plistlib; placeholders are filled in inside strings,
and a string that is exactly @HUBD_EXEC@ becomes the command's words.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
from pathlib import Path
from typing import Any

from hubd.errors import ServiceManagerError, UsageError
from hubd.paths import APP_NAME
from hubd.service._base import (
    Activity,
    HubdCommand,
    ServiceFile,
    ServiceManager,
    _remove_tree,
    _write_atomically,
    fill_placeholders,
    is_root,
    read_template,
)

DAEMON_LABEL = "org.hubd.daemon"
TRAY_LABEL = "org.hubd.tray"
_EXEC_PLACEHOLDER = "@HUBD_EXEC@"
_STATE_RE = re.compile(r"^\s*state = (.+)$", re.MULTILINE)


def fill_plist(value: Any, command: HubdCommand, values: dict[str, str], template: str) -> Any:
    """A copy of a parsed plist with the placeholders filled in."""
    if isinstance(value, dict):
        return {key: fill_plist(item, command, values, template) for key, item in value.items()}
    if isinstance(value, list):
        filled: list[Any] = []
        for item in value:
            if item == _EXEC_PLACEHOLDER:
                filled.extend(command.argv)
            else:
                filled.append(fill_plist(item, command, values, template))
        return filled
    if isinstance(value, str):
        return fill_placeholders(value, values, template)
    return value


class Launchd(ServiceManager):
    name = "launchd"

    # ---- where things go

    def _library(self) -> Path:
        return Path("/Library") if self.target.mode == "system" else self.target.home() / "Library"

    def daemon_plist(self) -> Path:
        folder = "LaunchDaemons" if self.target.mode == "system" else "LaunchAgents"
        return self._library() / folder / f"{DAEMON_LABEL}.plist"

    def tray_plist(self) -> Path:
        return self._library() / "LaunchAgents" / f"{TRAY_LABEL}.plist"

    def log_dir(self) -> Path:
        # hubd/paths.py's log_dir on macOS: /Library/Logs/hubd (system), platformdirs'
        # ~/Library/Logs/hubd (user). Spelled out so plists can be generated on any platform.
        return self._library() / "Logs" / APP_NAME

    def destinations(self) -> list[Path]:
        return [self.daemon_plist(), self.tray_plist()]

    def data_dirs(self) -> list[Path]:
        # The macOS locations of hubd/paths.py (system) and platformdirs (user).
        if self.target.mode == "system":
            support = Path("/Library/Application Support") / APP_NAME
            return [support, Path("/var/run") / APP_NAME, self.log_dir()]
        library = self._library()
        return [
            library / "Application Support" / APP_NAME,
            self.log_dir(),
            library / "Caches" / "TemporaryItems" / APP_NAME,
        ]

    def _domain(self) -> str:
        return "system" if self.target.mode == "system" else f"gui/{os.getuid()}"

    # ---- files

    def render(self, command: HubdCommand) -> list[ServiceFile]:
        values = {"@HUBD_LOG_DIR@": str(self.log_dir()), "@HUBD_HOME@": str(self.target.home())}
        folder = "LaunchDaemons" if self.target.mode == "system" else "LaunchAgents"
        when = "at boot" if self.target.mode == "system" else "at your login"
        return [
            ServiceFile(
                self.daemon_plist(),
                self._plist(f"launchd/{folder}/{DAEMON_LABEL}.plist", command, values),
                f"the daemon, started {when}",
            ),
            ServiceFile(
                self.tray_plist(),
                self._plist(f"launchd/LaunchAgents/{TRAY_LABEL}.plist", command, values),
                "the tray, started at each graphical login",
            ),
        ]

    def _plist(self, template: str, command: HubdCommand, values: dict[str, str]) -> bytes:
        try:
            parsed = plistlib.loads(read_template(template).encode())
        except (plistlib.InvalidFileException, ValueError) as exc:
            raise ServiceManagerError(f"template {template} is not a valid plist: {exc}") from None
        return plistlib.dumps(
            fill_plist(parsed, command, values, template), fmt=plistlib.FMT_XML, sort_keys=False
        )

    # ---- launchctl

    def _loaded(self, label: str) -> bool:
        return self.run(["launchctl", "print", f"{self._domain()}/{label}"]).ok

    def _bootout(self, label: str) -> list[str]:
        if not self._loaded(label):
            return []
        return [
            self.change(
                ["launchctl", "bootout", f"{self._domain()}/{label}"],
                f"stopped and unloaded {label}",
            )
        ]

    def _bootstrap(self, label: str, plist: Path) -> list[str]:
        domain = self._domain()
        # A job disabled earlier (launchctl disable) would refuse to load.
        lines = [
            self.change(["launchctl", "enable", f"{domain}/{label}"], ""),
            self.change(
                ["launchctl", "bootstrap", domain, str(plist)],
                f"loaded and started {label} ({domain})",
            ),
        ]
        return [line for line in lines if line]

    # ---- hooks

    def check_usable(self, *, changing: bool, installing: bool) -> None:
        if not self.target.live:
            return
        if shutil.which("launchctl", path=self.target.environ.get("PATH", os.defpath)) is None:
            raise ServiceManagerError(
                "launchctl not found: `hubd service` needs launchd on macOS; without it, run "
                "`hubd run` under your own service manager"
            )
        if changing and not self.target.dry_run and self.target.mode == "system" and not is_root():
            raise UsageError(
                "the system service needs root: run `sudo hubd service ...`, or "
                "use --user for a service of your own"
            )

    def activate(self, *, changed: bool) -> list[str]:
        lines: list[str] = []
        log_dir = self.target.on_disk(self.log_dir())
        if not log_dir.is_dir() and not self.target.dry_run:
            # launchd opens StandardOutPath itself and does not create the folder.
            try:
                log_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServiceManagerError(f"cannot create {log_dir}: {exc.strerror}") from None
            lines.append(f"created {log_dir} (launchd's output files)")
        if not self.target.live:
            if changed:
                lines.append(
                    f"not loaded (installed under {self.target.root}): "
                    "launchd loads it at the next boot or login"
                )
            return lines
        jobs = [(DAEMON_LABEL, self.daemon_plist())]
        if self.target.mode == "user":
            jobs.append((TRAY_LABEL, self.tray_plist()))
        elif changed:
            lines.append("the tray starts at each user's next graphical login")
        for label, plist in jobs:
            if self._loaded(label) and not changed:
                continue
            # A changed plist only takes effect when the job is loaded again.
            lines += self._bootout(label)
            try:
                lines += self._bootstrap(label, plist)
            except ServiceManagerError as exc:
                if label != TRAY_LABEL:
                    raise
                # No window server here (e.g. over ssh): the tray is a convenience.
                lines.append(
                    f"the tray was not started now ({exc}); it starts at your next graphical login"
                )
        return lines

    def deactivate(self) -> list[str]:
        if not self.target.live:
            return []
        lines = self._bootout(DAEMON_LABEL)
        if self.target.mode == "user":
            lines += self._bootout(TRAY_LABEL)
        else:
            lines.append("running trays go away at logout; they are not started again")
        return lines

    def after_removal(self) -> list[str]:
        log_dir = self.target.on_disk(self.log_dir())
        if self.target.dry_run or not log_dir.is_dir() or any(log_dir.iterdir()):
            return []
        # Created by the install for launchd's output files; empty, so nothing to keep.
        log_dir.rmdir()
        self.prune_empty_parents(log_dir.parent)
        return [f"removed {log_dir} (empty)"]

    # ---- the tray's "Start at login" and "Start hubd"

    def _user_tray_plist(self) -> Path:
        return self.target.on_disk(
            self.target.home() / "Library" / "LaunchAgents" / f"{TRAY_LABEL}.plist"
        )

    def _system_tray_plist(self) -> Path:
        return self.target.on_disk(Path("/Library/LaunchAgents") / f"{TRAY_LABEL}.plist")

    def _tray_disabled(self) -> bool:
        listed = self.run(["launchctl", "print-disabled", f"gui/{os.getuid()}"])
        marks = re.search(rf'"{re.escape(TRAY_LABEL)}" => (\w+)', listed.stdout)
        return bool(marks and marks.group(1) in {"disabled", "true"})

    def tray_starts_at_login(self) -> bool:
        present = self._user_tray_plist().exists() or self._system_tray_plist().exists()
        return present and not self._tray_disabled()

    def set_tray_starts_at_login(self, on: bool, command: HubdCommand) -> str:
        user = self._user_tray_plist()
        domain = f"gui/{os.getuid()}"
        if on:
            self.change(["launchctl", "enable", f"{domain}/{TRAY_LABEL}"], "")
            if not self._system_tray_plist().exists():
                values = {
                    "@HUBD_LOG_DIR@": str(self.log_dir()),
                    "@HUBD_HOME@": str(self.target.home()),
                }
                template = f"launchd/LaunchAgents/{TRAY_LABEL}.plist"
                _write_atomically(user, self._plist(template, command, values))
            return f"the tray starts at login ({user})"
        if self._system_tray_plist().exists():
            # Everyone's LaunchAgent (`sudo hubd service install`): this user opts out.
            self.change(["launchctl", "disable", f"{domain}/{TRAY_LABEL}"], "")
        _remove_tree(user)
        return "the tray no longer starts at login"

    def start_argv(self) -> list[str]:
        return ["launchctl", "kickstart", f"{self._domain()}/{DAEMON_LABEL}"]

    def activity(self) -> Activity:
        present = self.target.on_disk(self.daemon_plist()).exists()
        if not self.target.live:
            enabled_text = "plist present" if present else "no plist"
            return Activity(
                present, enabled_text, None, f"not asked: files under {self.target.root}"
            )
        disabled = self.run(["launchctl", "print-disabled", self._domain()])
        marks = re.search(rf'"{re.escape(DAEMON_LABEL)}" => (\w+)', disabled.stdout)
        is_disabled = bool(marks and marks.group(1) in {"disabled", "true"})
        enabled = present and not is_disabled
        enabled_text = "disabled" if is_disabled else ("plist present" if present else "no plist")
        printed = self.run(["launchctl", "print", f"{self._domain()}/{DAEMON_LABEL}"])
        if not printed.ok:
            return Activity(enabled, enabled_text, False, "not loaded")
        state_match = _STATE_RE.search(printed.stdout)
        state = state_match.group(1).strip() if state_match else "loaded"
        return Activity(enabled, enabled_text, state == "running", state)
