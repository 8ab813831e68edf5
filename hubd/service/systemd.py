"""hubd as a systemd service (Linux): the unit, the tray's XDG autostart entry, systemctl.

System mode: /etc/systemd/system/hubd.service and /etc/xdg/autostart/hubd-tray.desktop.
User mode: ~/.config/systemd/user/hubd.service and ~/.config/autostart/hubd-tray.desktop.
Both: an entry in the application menu that starts the tray (applications/hubd.desktop) and
its icon in the hicolor theme, under /usr/local/share (system) or ~/.local/share (user).
The tray's "Start at login" switches this user's autostart entry on and off by itself.
With a staging root, `systemctl --root=ROOT` enables the system unit offline; systemctl has no
`--user --root`, so the user unit is enabled offline (SYSTEMD_OFFLINE=1) with HOME pointing
into the root.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from hubd import __version__
from hubd.errors import ServiceManagerError, UsageError
from hubd.paths import resolve_paths
from hubd.service._base import (
    Activity,
    CommandResult,
    HubdCommand,
    ServiceFile,
    ServiceManager,
    Target,
    _remove_tree,
    _write_atomically,
    fill_placeholders,
    is_root,
    read_template,
)

UNIT = "hubd.service"
AUTOSTART_ENTRY = "hubd-tray.desktop"
LAUNCHER_ENTRY = "hubd.desktop"
ICON_NAME = "hubd"  # Icon= in both entries
# The sizes desktops ask the hicolor theme for (menus 16-48, launchers and docks up to 256).
ICON_SIZES_PX = (16, 22, 24, 32, 48, 64, 128, 256)
# sd_booted(3): systemd is PID 1 exactly when this directory exists.
SYSTEMD_RUN_DIR = Path("/run/systemd/system")

# A word systemd takes as it is; anything else is double-quoted.
_SYSTEMD_PLAIN_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# Characters that oblige quoting in a desktop entry's Exec (Desktop Entry Specification).
_DESKTOP_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
_ACTIVE_STATES = {"active", "activating", "reloading"}


def systemd_command_line(argv: tuple[str, ...]) -> str:
    """ARGV as an ExecStart= value: % doubled everywhere (specifiers), $ doubled in arguments
    (variables; systemd does not expand them in the executable's path), odd words quoted."""
    words = []
    for position, word in enumerate(argv):
        word = word.replace("%", "%%")
        if position > 0:
            word = word.replace("$", "$$")
        if not _SYSTEMD_PLAIN_RE.match(word):
            word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
        words.append(word)
    return " ".join(words)


def desktop_string(value: str) -> str:
    """A value of type string in a desktop entry: backslashes escaped."""
    return value.replace("\\", "\\\\")


def desktop_command_line(argv: tuple[str, ...]) -> str:
    """ARGV as a desktop entry's Exec= value: quoting rule, then %% for field codes, then the
    string escape that applies before the quoting rule when the entry is read."""
    words = []
    for word in argv:
        if not word or any(char in _DESKTOP_RESERVED for char in word):
            word = '"' + re.sub(r'([`"$\\])', r"\\\1", word) + '"'
        words.append(desktop_string(word.replace("%", "%%")))
    return " ".join(words)


def _hidden(entry: str) -> bool:
    """Whether a desktop entry is switched off (Hidden=true, or GNOME's own switch)."""
    lines = {line.strip().replace(" ", "") for line in entry.splitlines()}
    return "Hidden=true" in lines or "X-GNOME-Autostart-enabled=false" in lines


class Systemd(ServiceManager):
    name = "systemd"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._user_manager: CommandResult | None = None

    # ---- where things go

    def unit_dir(self) -> Path:
        if self.target.mode == "system":
            return Path("/etc/systemd/system")
        return self.target.config_home() / "systemd" / "user"

    def autostart_dir(self) -> Path:
        if self.target.mode == "system":
            return Path("/etc/xdg/autostart")
        return self.target.config_home() / "autostart"

    def share_dir(self) -> Path:
        # /usr/local: hubd is installed with pip, not by the distribution's package manager.
        if self.target.mode == "system":
            return Path("/usr/local/share")
        return self.target.data_home()

    def launcher_path(self) -> Path:
        return self.share_dir() / "applications" / LAUNCHER_ENTRY

    def icon_paths(self) -> dict[str, Path]:
        """Each icon size ("16", ..., "scalable") and where it goes in the hicolor theme."""
        hicolor = self.share_dir() / "icons" / "hicolor"
        paths = {
            str(size): hicolor / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
            for size in ICON_SIZES_PX
        }
        paths["scalable"] = hicolor / "scalable" / "apps" / f"{ICON_NAME}.svg"
        return paths

    def destinations(self) -> list[Path]:
        return [
            self.unit_dir() / UNIT,
            self.autostart_dir() / AUTOSTART_ENTRY,
            self.launcher_path(),
            *self.icon_paths().values(),
        ]

    def data_dirs(self) -> list[Path]:
        # The CLI's and the daemon's own idea of the locations (the unit's *Directory=
        # settings are chosen to agree with it); environ={} ignores systemd's variables in
        # case this runs inside a unit.
        paths = resolve_paths(self.target.mode, environ={})
        found: list[Path] = []
        for path in (paths.config_dir, paths.state_dir, paths.log_dir, paths.runtime_dir):
            if path not in found:
                found.append(path)
        return found

    # ---- files

    def render(self, command: HubdCommand) -> list[ServiceFile]:
        unit_template = f"systemd/{self.target.mode}/{UNIT}"
        unit = fill_placeholders(
            read_template(unit_template),
            {
                "@HUBD_EXEC@": systemd_command_line(command.argv),
                "@HUBD_VERSION@": __version__,
            },
            unit_template,
        )
        when = "at boot" if self.target.mode == "system" else "with your user session"
        return [
            ServiceFile(self.unit_dir() / UNIT, unit.encode(), f"the daemon, started {when}"),
            ServiceFile(
                self.autostart_dir() / AUTOSTART_ENTRY,
                self.autostart_entry(command),
                "the tray, started at each desktop login",
            ),
            ServiceFile(
                self.launcher_path(),
                self._desktop_entry(f"systemd/applications/{LAUNCHER_ENTRY}", command),
                "the tray in the application menu",
            ),
            *self._icons(),
        ]

    def autostart_entry(self, command: HubdCommand) -> bytes:
        return self._desktop_entry(f"systemd/autostart/{AUTOSTART_ENTRY}", command)

    def _desktop_entry(self, template: str, command: HubdCommand) -> bytes:
        return fill_placeholders(
            read_template(template),
            {
                "@HUBD_EXEC@": desktop_command_line(command.argv),
                "@HUBD_PROGRAM@": desktop_string(command.program),
                "@HUBD_VERSION@": __version__,
            },
            template,
        ).encode()

    def _icons(self) -> list[ServiceFile]:
        # Drawn by the tray's own painter (Pillow), so the menu shows the icon the panel does.
        from hubd.tray import app_icon_png, app_icon_scalable

        files = []
        for size, path in self.icon_paths().items():
            content = app_icon_scalable() if size == "scalable" else app_icon_png(int(size))
            files.append(ServiceFile(path, content, f"the icon ({size})"))
        return files

    # ---- the tray's "Start at login" (this user's autostart entry, service or not)

    def _user_autostart(self) -> Path:
        return self.target.on_disk(self.target.config_home() / "autostart" / AUTOSTART_ENTRY)

    def _system_autostarts(self) -> list[Path]:
        return [
            self.target.on_disk(folder / "autostart" / AUTOSTART_ENTRY)
            for folder in self.target.config_dirs()
        ]

    def tray_starts_at_login(self) -> bool:
        # XDG autostart: the user's entry hides a system one of the same name.
        user = self._user_autostart()
        if user.exists():
            return not _hidden(user.read_text(errors="replace"))
        return any(
            path.exists() and not _hidden(path.read_text(errors="replace"))
            for path in self._system_autostarts()
        )

    def set_tray_starts_at_login(self, on: bool, command: HubdCommand) -> str:
        user = self._user_autostart()
        system_entry = any(path.exists() for path in self._system_autostarts())
        if on:
            _write_atomically(user, self.autostart_entry(command))
            return f"the tray starts at login ({user})"
        if system_entry:
            # The system-wide entry (`sudo hubd service install`) is everyone's: this user
            # opts out with a hidden entry of the same name.
            _write_atomically(user, self.autostart_entry(command) + b"Hidden=true\n")
        else:
            _remove_tree(user)
        return "the tray no longer starts at login"

    def start_argv(self) -> list[str]:
        argv, _env = self._systemctl("start", "--no-block", UNIT)
        return argv

    # ---- systemctl

    def _systemctl(self, *args: str) -> tuple[list[str], Mapping[str, str] | None]:
        argv = ["systemctl"]
        env: Mapping[str, str] | None = None
        if self.target.mode == "user":
            argv.append("--user")
        root = self.target.root
        if root is not None and self.target.mode == "system":
            argv.append(f"--root={root}")
        elif root is not None:
            env = {
                **self.target.environ,
                "HOME": str(self.target.on_disk(self.target.home())),
                "XDG_CONFIG_HOME": str(self.target.on_disk(self.target.config_home())),
                "SYSTEMD_OFFLINE": "1",
            }
        elif self.target.mode == "user" and not self._user_manager_reply().ok:
            # No user manager to talk to (su, sudo, no session): work on the files, so that
            # uninstall and status still work.
            env = {**self.target.environ, "SYSTEMD_OFFLINE": "1"}
        return [*argv, *args], env

    def _user_manager_reply(self) -> CommandResult:
        if self._user_manager is None:
            self._user_manager = (
                self.run(["systemctl", "--user", "show-environment"])
                if self._booted()
                else CommandResult(1, "", "systemd is not running here")
            )
        return self._user_manager

    def _query(self, *args: str) -> CommandResult:
        argv, env = self._systemctl(*args)
        return self.run(argv, env)

    def _change(self, done: str, *args: str) -> str:
        argv, env = self._systemctl(*args)
        return self.change(argv, done, env)

    def _booted(self) -> bool:
        return SYSTEMD_RUN_DIR.is_dir()

    def _manages_live(self) -> bool:
        """Start/stop/reload only on this machine with its service manager running."""
        if not self.target.live or not self._booted():
            return False
        return self.target.mode == "system" or self._user_manager_reply().ok

    def _first_word(self, result: CommandResult) -> str:
        words = result.stdout.split()
        return words[0] if words else ""

    # ---- hooks

    def check_usable(self, *, changing: bool, installing: bool) -> None:
        path = self.target.environ.get("PATH", os.defpath)
        if shutil.which("systemctl", path=path) is None:
            raise ServiceManagerError(
                "systemctl not found: `hubd service` needs systemd on Linux; without it, run "
                "`hubd run` under your own service manager"
            )
        if not changing or not self.target.live or self.target.dry_run:
            return
        if installing and not self._booted():
            raise ServiceManagerError(
                "systemd is not running on this machine (PID 1 is something else, e.g. in a "
                "container or WSL): nothing changed. `--root /` writes and enables the files "
                "offline, for a later boot with systemd"
            )
        if self.target.mode == "system" and not is_root():
            raise UsageError(
                "the system service needs root: run `sudo hubd service ...`, or use --user for "
                "a service of your own"
            )
        if installing and self.target.mode == "user":
            reach = self._user_manager_reply()
            if not reach.ok:
                raise ServiceManagerError(
                    f"cannot reach your systemd user manager ({reach.reason()}): log in directly "
                    "(not through su or sudo), or use --system"
                )

    def activate(self, *, changed: bool) -> list[str]:
        lines: list[str] = []
        live = self._manages_live()
        if live and changed:
            reload = self._change("", "daemon-reload")
            lines += [reload] if reload else []
        enabled = self._first_word(self._query("is-enabled", UNIT))
        if enabled != "enabled":
            when = "at boot" if self.target.mode == "system" else "with your user session"
            lines.append(self._change(f"enabled {UNIT} (starts {when})", "enable", UNIT))
        if live:
            state = self._first_word(self._query("is-active", UNIT))
            # --no-block: a first start pulls images for a long time before READY=1.
            if changed and state in _ACTIVE_STATES:
                lines.append(
                    self._change(
                        f"restarting {UNIT} with the new unit ({self._follow_hint()})",
                        "restart",
                        "--no-block",
                        UNIT,
                    )
                )
            elif state not in _ACTIVE_STATES:
                lines.append(
                    self._change(
                        f"starting {UNIT} in the background ({self._follow_hint()})",
                        "start",
                        "--no-block",
                        UNIT,
                    )
                )
            if changed and self.target.mode == "user":
                lines += self._linger_hint()
        elif changed and not self.target.dry_run:
            when = "boot" if self.target.mode == "system" else "login"
            lines.append(f"not started ({self._why_not_started()}): it starts at the next {when}")
        return lines

    def _follow_hint(self) -> str:
        journal = (
            "journalctl --user -u hubd -f"
            if self.target.mode == "user"
            else "journalctl -u hubd -f"
        )
        return f"`hubd service status`, `{journal}`"

    def _why_not_started(self) -> str:
        return (
            f"installed under {self.target.root}"
            if self.target.root is not None
            else "systemd is not running here"
        )

    def _linger_hint(self) -> list[str]:
        user = self.target.environ.get("USER") or self.target.home().name
        result = self.run(["loginctl", "show-user", user, "--property=Linger", "--value"])
        if result.ok and result.stdout.strip() == "yes":
            return []
        return [
            f"note: a user service runs only while {user} is logged in; "
            f"`sudo loginctl enable-linger {user}` starts it at boot"
        ]

    def deactivate(self) -> list[str]:
        lines: list[str] = []
        if self._manages_live():
            state = self._first_word(self._query("is-active", UNIT))
            if state in _ACTIVE_STATES:
                lines.append(self._change(f"stopped {UNIT}", "stop", UNIT))
        if self._first_word(self._query("is-enabled", UNIT)) == "enabled":
            lines.append(self._change(f"disabled {UNIT}", "disable", UNIT))
        return lines

    def after_removal(self) -> list[str]:
        if self._manages_live() and not self.target.dry_run:
            # Forget the unit now rather than at the next reload; a failed state would
            # otherwise linger in `systemctl --failed`.
            self._query("daemon-reload")
            self._query("reset-failed", UNIT)
        return []

    def starting(self) -> bool:
        # Type=notify: "activating" from the start until READY=1 after hubd's first pass
        # (minutes on a first start); its control socket opens a moment after it starts.
        if not self.target.live or not self._booted():
            return False
        return self._first_word(self._query("is-active", UNIT)) == "activating"

    def activity(self) -> Activity:
        if not self.target.on_disk(self.unit_dir() / UNIT).exists():
            enabled: bool | None = False
            enabled_text = "no unit file"
        else:
            enabled_text = self._first_word(self._query("is-enabled", UNIT)) or "unknown"
            enabled = enabled_text == "enabled" if enabled_text != "unknown" else None
        if self.target.root is not None:
            return Activity(
                enabled, enabled_text, None, f"not asked: files under {self.target.root}"
            )
        if not self._booted():
            return Activity(enabled, enabled_text, None, "systemd is not running here")
        result = self._query("is-active", UNIT)
        state = self._first_word(result)
        if not state:
            return Activity(enabled, enabled_text, None, result.reason())
        return Activity(enabled, enabled_text, state in _ACTIVE_STATES, state)
