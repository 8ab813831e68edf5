"""Where hubd keeps its config, state, control socket and logs.

Computed when asked, never at import time. Under systemd the directories it hands us
(`$STATE_DIRECTORY` and friends) win; otherwise platformdirs decides, and as root on Linux
that means the system locations (/etc/xdg/hubd, /var/lib/hubd, /run/hubd, /var/log/hubd).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, NamedTuple

from hubd.errors import UntrustedPath, UsageError

if TYPE_CHECKING:
    import threading
    from collections.abc import Generator

    from platformdirs import PlatformDirs

Mode = Literal["user", "system"]
APP_NAME = "hubd"


class Paths(NamedTuple):
    """Immutable, compared by value. (A NamedTuple, not a dataclass: `dataclasses` imports
    `inspect`, ~10 ms on every `hubd config path`.)"""

    config_dir: Path
    state_dir: Path
    runtime_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / "control.sock"

    @property
    def desired_state_file(self) -> Path:
        return self.state_dir / "desired-state.json"

    @property
    def image_pins_file(self) -> Path:
        return self.state_dir / "image-pins.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "hubd.log"


def default_mode() -> Mode:
    return "system" if hasattr(os, "geteuid") and os.geteuid() == 0 else "user"


def _first_of(value: str | None) -> Path | None:
    # systemd passes a colon-separated list when a unit names several directories.
    return Path(value.split(":")[0]) if value else None


def resolve_paths(mode: Mode | None = None, environ: Mapping[str, str] | None = None) -> Paths:
    from platformdirs import PlatformDirs  # only when paths are asked for

    environ = os.environ if environ is None else environ
    mode = mode or default_mode()
    dirs = PlatformDirs(APP_NAME, appauthor=False, use_site_for_root=(mode == "system"))
    if mode == "system" and sys.platform == "darwin":
        # platformdirs has no system locations on macOS; these are launchd's conventions.
        support = Path("/Library/Application Support") / APP_NAME
        defaults = Paths(
            support, support, Path("/var/run") / APP_NAME, Path("/Library/Logs") / APP_NAME
        )
    elif mode == "system" and default_mode() != "system":
        # Asked for the system locations without being root (e.g. `hubd service install
        # --system --dry-run` or a test): name them explicitly.
        defaults = Paths(
            Path(dirs.site_config_dir),
            Path("/var/lib") / APP_NAME,
            Path("/run") / APP_NAME,
            Path("/var/log") / APP_NAME,
        )
    else:
        runtime_dir = _user_runtime_dir(dirs)
        defaults = Paths(
            Path(dirs.user_config_dir),
            Path(dirs.user_state_dir),
            runtime_dir,
            Path(dirs.user_log_dir),
        )
    return Paths(
        config_dir=_first_of(environ.get("CONFIGURATION_DIRECTORY")) or defaults.config_dir,
        state_dir=_first_of(environ.get("STATE_DIRECTORY")) or defaults.state_dir,
        runtime_dir=_first_of(environ.get("RUNTIME_DIRECTORY")) or defaults.runtime_dir,
        log_dir=_first_of(environ.get("LOGS_DIRECTORY")) or defaults.log_dir,
    )


def sudo_user_state_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Under `sudo`, the state folder of the person who ran it, as their own hubd has it
    (platformdirs' default, which the user service's `StateDirectory=hubd` matches); None
    when not under sudo. sudo gives root's environment and home, not theirs: this is how
    `sudo hubd trust install` finds the root of a hub that runs in the person's account."""
    environ = os.environ if environ is None else environ
    name = environ.get("SUDO_USER")
    if default_mode() != "system" or not name or name == "root":
        return None
    import pwd

    try:
        home = Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        return None
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return home / ".local" / "state" / APP_NAME


def _user_runtime_dir(dirs: PlatformDirs) -> Path:
    """The control socket's folder. Without XDG_RUNTIME_DIR (cron, su) platformdirs warns and
    uses /tmp/runtime-UID, a name any local account can take first; when that one is a
    symlink or another account's, platformdirs raises. Either way hubd names the folder here
    and checks it where it matters: prepare_runtime_dir() before the daemon makes its socket,
    check_server() before a client sends anything. So `hubd config path` or `hubd tray`
    still work, and `hubd run` refuses with one line that says what to do."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Path(dirs.user_runtime_dir)
        except OSError:
            import tempfile

            return Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}" / APP_NAME


def prepare_runtime_dir(path: Path) -> Path:
    """Create the control socket's folder if missing, and refuse one another account controls.

    Without XDG_RUNTIME_DIR the folder is /tmp/runtime-UID, which any local account can
    create first (or plant as a symlink) and so put its own socket where `hubd user add`
    sends passwords. The folder must be a real directory (not a symlink), owned by this
    user, and closed to everyone else (mode 0700); root's (the system service's /run/hubd)
    may be readable by others, for control_group, but writable only by root.
    """
    uid = os.geteuid()
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    closed = 0o022 if uid == 0 else 0o077
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symlink"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif info.st_uid != uid:
        problem = f"belongs to uid {info.st_uid}, not to you (uid {uid})"
    elif info.st_mode & closed:
        problem = f"is open to other accounts (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        raise UntrustedPath(
            f"the control socket's folder {path} {problem}; another local account may have "
            f"made it: remove it (or run with XDG_RUNTIME_DIR set, e.g. by logging in "
            f"normally rather than `su`) and try again"
        )
    return path


def log_file_tail(path: Path, tail: int) -> list[str]:
    """The last `tail` lines of the daemon's log file (bounded by its rotation size)."""
    import collections

    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return [line.rstrip("\n") for line in collections.deque(lines, maxlen=tail)]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot read hubd's log {path}: {exc.strerror}") from None


class LogFileFollower:
    """A log file's last lines, then the lines added as they come (`tail -F`): across its
    rotation (the file renamed, a new one begun) and before it exists. Opened at once, so
    a file hubd may not read is an error now; nothing is lost or doubled in between."""

    def __init__(self, path: Path, tail: int) -> None:
        import collections

        self.path = path
        self._handle = _open_log(path)
        last: collections.deque[str] = collections.deque(maxlen=tail)
        if self._handle is not None:
            while line := self._handle.readline():
                last.append(line if line.endswith("\n") else line + "\n")
        self.last = [line.rstrip("\n") for line in last]

    def follow(self, poll_s: float, stopped: threading.Event) -> Generator[str, None, None]:
        """The lines added after the last ones, until `stopped` is set."""
        pending = ""
        while not stopped.is_set():
            handle = self._handle
            text = handle.readline() if handle is not None else ""
            if text:
                pending += text
                if pending.endswith("\n"):  # a line the writer has finished
                    yield pending
                    pending = ""
                continue
            if _replaced(self.path, handle):  # rotated: the old file was read to its end
                self.close()
                self._handle = _open_log(self.path)
                continue
            stopped.wait(poll_s)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _open_log(path: Path) -> IO[str] | None:
    try:
        return path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read hubd's log {path}: {exc.strerror}") from None


def _replaced(path: Path, handle: IO[str] | None) -> bool:
    """Whether `path` is now another file than the one open (or appeared, or was cut)."""
    try:
        now = path.stat()
    except OSError:
        return False
    if handle is None:
        return True
    current = os.fstat(handle.fileno())
    return (now.st_ino, now.st_dev) != (current.st_ino, current.st_dev) or (
        now.st_size < handle.tell()
    )
