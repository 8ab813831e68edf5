"""Installing hubd's daemon and tray with the machine's service manager (`hubd service`).

This module is the common ground of the two backends, systemd (service/systemd.py) and launchd
(service/launchd.py): which hubd executable a service runs, reading and filling in the
templates shipped in packaging/, writing and removing files, and the install / uninstall /
status flows. Everything acts on a `Target`: a mode (system or user), an optional staging root
(like DESTDIR: tests and packagers write there and nothing is started) and an injectable
command runner, so tests can run the real systemctl against a temporary tree.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from hubd.errors import ServiceManagerError, UsageError
from hubd.files import atomic_write
from hubd.paths import APP_NAME, Mode
from hubd.timing import Timing, timing_from_env

# systemctl stop waits up to the unit's TimeoutStopSec (30 s); leave room beyond it.
# What a service manager gives a service: no PATH of ours, no virtualenv activation.
_SERVICE_LIKE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_PLACEHOLDER_RE = re.compile(r"@HUBD_[A-Z_]+@")
_CONTROL_CHAR_RE = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self) -> str:
        """The last line the command printed about itself, for a one-line error message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.returncode}"


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult: ...


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float,
) -> CommandResult:
    """Run a command and capture its output; a missing program is a result, not an exception."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]} did not finish within {timeout_s:.0f} s")
    except OSError as exc:
        return CommandResult(127, "", f"{argv[0]}: {exc.strerror}")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def command_runner(timing: Timing) -> Runner:
    """`run_command` with the timing's command timeout."""

    def run(
        argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        return run_command(argv, env=env, cwd=cwd, timeout_s=timing.service_command_timeout_s)

    return run


# ---------------------------------------------------------------------------- the executable


@dataclass(frozen=True)
class HubdCommand:
    """The words that start hubd: its console script, or `python -m hubd`."""

    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return self.argv[0]

    def __str__(self) -> str:
        return shlex.join(self.argv)


def find_hubd_command(python: str | None = None) -> HubdCommand:
    """The `hubd` script installed next to this Python, else `python -m hubd`.

    The interpreter path is kept as it is, not resolved: in a virtualenv the symlink is what
    selects the environment.
    """
    python = python or sys.executable
    if not python:
        raise UsageError("cannot tell which Python runs hubd (sys.executable is empty)")
    python = os.path.abspath(python)
    script = Path(python).parent / "hubd"
    if script.is_file() and os.access(script, os.X_OK):
        return HubdCommand((str(script),))
    return HubdCommand((python, "-m", "hubd"))


def check_hubd_command(command: HubdCommand, runner: Runner) -> str:
    """Run `COMMAND --version` as a service manager would (from /, with a bare environment).

    A source checkout works from its own directory but not from a unit file; better to refuse
    now than to install a service that fails at boot. Returns the version line.
    """
    bad = next((word for word in command.argv if _CONTROL_CHAR_RE.search(word)), None)
    if bad is not None:
        raise UsageError(
            f"the path to hubd contains a control character ({bad!r}): "
            "a service file cannot name it; install hubd somewhere else"
        )
    if not os.path.isabs(command.program):
        raise UsageError(f"the path to hubd must be absolute, not {command.program!r}")
    result = runner([*command.argv, "--version"], env=_SERVICE_LIKE_ENV, cwd="/")
    if not result.ok or not result.stdout.startswith("hubd "):
        raise UsageError(
            f"`{command} --version` fails outside this shell ({result.reason()}): install hubd "
            "with pip (a plain source checkout is not enough) and run `hubd service install` "
            "from that installation"
        )
    return result.stdout.strip()


# ---------------------------------------------------------------------------- templates


def templates_location() -> Path:
    """The folder the templates are read from: packaging/ as installed, or in the tree."""
    # A wheel installs packaging/ as the data-only (namespace) package hubd.packaging.
    spec = importlib.util.find_spec("hubd.packaging")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # An editable install or a plain checkout: setuptools' editable finder cannot map a
    # subpackage without __init__.py, so read packaging/ next to the hubd package.
    checkout = Path(__file__).resolve().parents[2] / "packaging"
    if checkout.is_dir():
        return checkout
    raise ServiceManagerError(
        "hubd's service templates are missing from this installation "
        "(hubd.packaging): reinstall hubd"
    )


def read_template(relative: str) -> str:
    """The text of packaging/RELATIVE (e.g. 'systemd/system/hubd.service')."""
    try:
        return (templates_location() / relative).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceManagerError(f"cannot read hubd's template {relative}: {exc}") from None


def fill_placeholders(text: str, values: Mapping[str, str], template: str) -> str:
    """Replace every @HUBD_...@ placeholder; one without a value is a packaging bug."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(0)
        if name not in values:
            raise ServiceManagerError(
                f"template {template} has no value for {name}: this hubd's packaging is broken"
            )
        return values[name]

    return _PLACEHOLDER_RE.sub(value_of, text)


# ---------------------------------------------------------------------------- target


def _everything_from_os() -> dict[str, str]:
    return dict(os.environ)


@dataclass(frozen=True)
class Target:
    """Where and how to install: system or user mode, on this machine or into a staging root."""

    mode: Mode
    # A staging tree (tests, packagers): files go below it, systemctl/launchctl run offline
    # on it, nothing is started or stopped. None: this machine, live.
    root: Path | None = None
    environ: Mapping[str, str] = field(default_factory=_everything_from_os)
    # Without one given: the commands' timeout from this process' timing (HUBD_TIMING).
    runner: Runner = field(default_factory=lambda: command_runner(timing_from_env()))
    dry_run: bool = False

    @property
    def live(self) -> bool:
        return self.root is None

    @property
    def staging(self) -> bool:
        """A root other than / itself: everything in it is ours to tidy up."""
        return self.root is not None and self.root.resolve() != Path("/")

    def home(self) -> Path:
        home = self.environ.get("HOME", "")
        return Path(home) if os.path.isabs(home) else Path.home()

    def config_home(self) -> Path:
        value = self.environ.get("XDG_CONFIG_HOME", "")
        return Path(value) if os.path.isabs(value) else self.home() / ".config"

    def data_home(self) -> Path:
        value = self.environ.get("XDG_DATA_HOME", "")
        return Path(value) if os.path.isabs(value) else self.home() / ".local" / "share"

    def config_dirs(self) -> list[Path]:
        """The system-wide XDG config folders, most important first (XDG_CONFIG_DIRS)."""
        value = self.environ.get("XDG_CONFIG_DIRS", "")
        dirs = [Path(part) for part in value.split(":") if os.path.isabs(part)]
        return dirs or [Path("/etc/xdg")]

    def on_disk(self, path: Path) -> Path:
        """Where PATH (as the service manager will see it) is written, given the root."""
        if self.root is None:
            return path
        return self.root / path.relative_to(path.anchor)

    def describe(self) -> str:
        return f"{self.mode} mode" + (f", under {self.root}" if self.root is not None else "")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# ---------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ServiceFile:
    path: Path  # as the service manager sees it (without the staging root)
    content: bytes
    what: str  # for messages: "the daemon's unit", ...


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # launchd refuses group- or world-writable plists; units follow the same rule.
        atomic_write(path, content, mode=0o644)
    except OSError as exc:
        raise ServiceManagerError(f"cannot write {path}: {exc.strerror}") from None


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _remove_tree(path: Path) -> None:
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ServiceManagerError(f"cannot remove {path}: {exc.strerror}") from None


# ---------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Activity:
    """What the service manager says: enabled at boot/login? running now?"""

    enabled: bool | None  # None: could not ask
    enabled_text: str
    active: bool | None  # None: could not ask
    active_text: str


@dataclass(frozen=True)
class ServiceStatus:
    manager: str
    mode: str
    files: list[str]  # installed files present, as on disk
    missing: list[str]  # installed files that are not there
    up_to_date: bool | None  # the files equal what `install` would write now
    activity: Activity

    @property
    def installed(self) -> bool:
        return bool(self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "mode": self.mode,
            "installed": self.installed,
            "files": self.files,
            "missing": self.missing,
            "up_to_date": self.up_to_date,
            "enabled": self.activity.enabled,
            "enabled_text": self.activity.enabled_text,
            "active": self.activity.active,
            "active_text": self.activity.active_text,
        }


# ---------------------------------------------------------------------------- the flows


class ServiceManager(ABC):
    """One service manager for one target; subclasses fill in the hooks."""

    name: ClassVar[str]

    def __init__(self, target: Target) -> None:
        self.target = target

    # ---- hooks

    @abstractmethod
    def check_usable(self, *, changing: bool, installing: bool) -> None:
        """Raise if this manager cannot be used here (missing, not running, not root).
        CHANGING: files or services will change; INSTALLING: something must start too."""

    @abstractmethod
    def render(self, command: HubdCommand) -> list[ServiceFile]:
        """The files an install writes, filled in for COMMAND."""

    @abstractmethod
    def destinations(self) -> list[Path]:
        """Where those files go, without rendering them (as the service manager sees them)."""

    @abstractmethod
    def activate(self, *, changed: bool) -> list[str]:
        """Enable and start after the files are in place; lines saying what was done."""

    @abstractmethod
    def deactivate(self) -> list[str]:
        """Stop and disable before the files go."""

    @abstractmethod
    def after_removal(self) -> list[str]:
        """Tidy up after the files are gone (reload the manager, empty directories)."""

    @abstractmethod
    def activity(self) -> Activity:
        """Enabled? Running?"""

    @abstractmethod
    def data_dirs(self) -> list[Path]:
        """hubd's config, state, runtime and log directories in this mode (for --purge)."""

    def starting(self) -> bool:
        """Started but not yet up: its control socket may not answer for a moment. launchd
        has no such state (a job runs or not), so only systemd says yes."""
        return False

    # ---- helpers for the hooks

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> CommandResult:
        """A query: it runs even in a dry run."""
        return self.target.runner(argv, env=env)

    def change(self, argv: Sequence[str], done: str, env: Mapping[str, str] | None = None) -> str:
        """A command that changes something: printed instead of run in a dry run."""
        if self.target.dry_run:
            return f"would run: {shlex.join(argv)}"
        result = self.target.runner(argv, env=env)
        if not result.ok:
            raise ServiceManagerError(f"`{shlex.join(argv)}` failed: {result.reason()}")
        return done

    def shown(self, path: Path) -> str:
        return str(self.target.on_disk(path))

    # ---- the flows

    def install(self, command: HubdCommand) -> list[str]:
        self.check_usable(changing=True, installing=True)
        check_hubd_command(command, self.target.runner)
        lines: list[str] = []
        for service_file in self.render(command):
            on_disk = self.target.on_disk(service_file.path)
            if _read_or_none(on_disk) == service_file.content:
                continue
            if not self.target.dry_run:
                _write_atomically(on_disk, service_file.content)
            verb = "would write" if self.target.dry_run else "wrote"
            lines.append(f"{verb} {on_disk} ({service_file.what})")
        changed = bool(lines)
        activation = self.activate(changed=changed)
        if not changed:
            where = ", ".join(self.shown(path) for path in self.destinations())
            lines.append(
                f"hubd service already installed ({self.name}, {self.target.describe()}): {where}"
            )
        return lines + activation

    def existing_data_dirs(self) -> list[Path]:
        return [path for path in self.data_dirs() if self.target.on_disk(path).exists()]

    def installed_files(self) -> list[Path]:
        return [
            path
            for path in self.destinations()
            if self.target.on_disk(path).exists() or self.target.on_disk(path).is_symlink()
        ]

    def uninstall(
        self, *, purge: bool, confirm: Callable[[list[str]], None] | None = None
    ) -> list[str]:
        """Stop, disable and remove what `install` wrote; with PURGE also hubd's data, after
        CONFIRM (given the folders; it raises to refuse) has agreed."""
        present = self.installed_files()
        self.check_usable(changing=bool(present) or purge, installing=False)
        data = self.existing_data_dirs()
        if purge and data and confirm is not None and not self.target.dry_run:
            confirm([self.shown(path) for path in data])
        lines: list[str] = []
        if present:
            lines += self.deactivate()
            for path in present:
                on_disk = self.target.on_disk(path)
                if not self.target.dry_run:
                    _remove_tree(on_disk)
                    self.prune_empty_parents(on_disk.parent)
                lines.append(f"{'would remove' if self.target.dry_run else 'removed'} {on_disk}")
            lines += self.after_removal()
        else:
            lines.append(
                f"hubd service is not installed ({self.name}, "
                f"{self.target.describe()}): nothing to remove"
            )
        data = self.existing_data_dirs()
        if purge:
            lines += self._purge(data)
        elif data and present:
            lines.append(
                "kept hubd's config, state and logs: "
                + ", ".join(self.shown(path) for path in data)
                + " (`hubd service uninstall --purge` removes them)"
            )
        return lines

    def _purge(self, data: list[Path]) -> list[str]:
        lines = (
            []
            if data
            else [f"no config, state or logs of hubd to remove ({self.target.describe()})"]
        )
        for path in data:
            # A guard against a surprising environment: only ever delete hubd's own folders.
            if APP_NAME not in path.parts:
                raise ServiceManagerError(f"refusing to delete {path}: not a hubd directory")
            on_disk = self.target.on_disk(path)
            if not on_disk.exists():
                continue  # inside a folder removed just before (the user log folder)
            if not self.target.dry_run:
                _remove_tree(on_disk)
                self.prune_empty_parents(on_disk.parent)
            lines.append(f"{'would remove' if self.target.dry_run else 'removed'} {on_disk}")
        lines.append(
            "Docker volumes (users' work and accounts) are untouched: `hubd purge` removes those"
        )
        return lines

    def prune_empty_parents(self, directory: Path) -> None:
        """In a staging root every directory is ours: leave no empty ones behind. On a real
        machine, standard directories (/etc/xdg/autostart, ~/.config/...) stay."""
        if not self.target.staging or self.target.root is None:
            return
        root = self.target.root.resolve()
        directory = directory.resolve()
        while directory != root and root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # ---- the tray's own switches ("Start at login", "Start hubd")

    def tray_starts_at_login(self) -> bool:
        """Whether the desktop starts the tray at this user's login."""
        raise ServiceManagerError(f"{self.name} cannot start the tray at login")

    def set_tray_starts_at_login(self, on: bool, command: HubdCommand) -> str:
        """Turn the tray's start at login on or off for this user; what was done."""
        raise ServiceManagerError(f"{self.name} cannot start the tray at login")

    def start_argv(self) -> list[str]:
        """The command that starts the installed daemon now."""
        raise ServiceManagerError(f"{self.name} cannot start hubd")

    def start_now(self) -> str:
        """Start the installed daemon through the service manager; what was done."""
        return self.change(self.start_argv(), f"started hubd ({self.target.mode} service)")

    def status(self, command: HubdCommand | None) -> ServiceStatus:
        self.check_usable(changing=False, installing=False)
        present = self.installed_files()
        missing = [path for path in self.destinations() if path not in present]
        up_to_date: bool | None = None
        if present and command is not None:
            wanted = {f.path: f.content for f in self.render(command)}
            up_to_date = not missing and all(
                _read_or_none(self.target.on_disk(path)) == wanted.get(path) for path in present
            )
        return ServiceStatus(
            manager=self.name,
            mode=self.target.mode,
            files=[self.shown(path) for path in present],
            missing=[self.shown(path) for path in missing],
            up_to_date=up_to_date,
            activity=self.activity(),
        )


# ---------------------------------------------------------------------------- choosing one
