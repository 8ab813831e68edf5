"""One tray per desktop session: a second `hubd tray` (an autostart entry and a click on the
application menu's launcher, say) must not put a second icon in the panel.

The guard is an flock(2) on a file in hubd's runtime folder, one file per display (two
logins of one account, on two displays, each get their own tray). The kernel drops the lock
when its process ends, however it ends, so a tray that crashed leaves nothing that keeps the
next one out: the file stays (removing it would race with the next tray's open), the lock
does not. The file holds the holder's pid, for the one line the second tray prints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hubd.errors import HubdError
from hubd.paths import prepare_runtime_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OtherTray:
    """The tray that holds the lock: its pid, None when it has not written it yet."""

    pid: int | None

    def message(self) -> str:
        holder = f" (pid {self.pid})" if self.pid is not None else ""
        return f"a hubd tray is already running{holder}"


def session_key(environ: Mapping[str, str]) -> str:
    """The desktop session, as a file name part: the Wayland display, else the X display
    without its screen number (`:0` and `:0.0` are one session), else `default` (macOS)."""
    wayland = environ.get("WAYLAND_DISPLAY", "")
    if wayland:
        return "wayland-" + _safe(wayland.rsplit("/", 1)[-1])
    display = environ.get("DISPLAY", "")
    if display:
        host, _, number = display.rpartition(":")
        return "x11-" + _safe(f"{host}:{number.split('.')[0]}")
    return "default"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip(".") or "_"


def lock_path(runtime_dir: Path, environ: Mapping[str, str]) -> Path:
    return runtime_dir / f"tray-{session_key(environ)}.lock"


@contextlib.contextmanager
def only_tray(runtime_dir: Path, environ: Mapping[str, str]) -> Iterator[OtherTray | None]:
    """Hold this session's tray lock for the block: gives None when it is ours, else the
    OtherTray that has it. A runtime folder hubd may not use (another account's, say) costs
    the guard, not the tray: it is logged and the tray starts anyway."""
    try:
        prepare_runtime_dir(runtime_dir)
        path = lock_path(runtime_dir, environ)
        # Not inherited by the tray's helpers (PEP 446): a window outliving the tray must not
        # keep the next tray out.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (HubdError, OSError) as exc:
        log.warning("cannot make sure this is the only tray (%s): starting anyway", exc)
        yield None
        return
    try:
        other = _lock(fd, path)
        yield other
    finally:
        os.close(fd)  # releases the lock (it goes with the process's end too)


def _lock(fd: int, path: Path) -> OtherTray | None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return OtherTray(_read_pid(path))
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
