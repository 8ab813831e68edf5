"""What the tray does on the machine itself rather than through the daemon: copy the hub's
address to the clipboard, start the daemon through the service manager `hubd service
install` set up, and switch the tray's own start at login on and off.

`SystemDesktop` is the real one; the tray's tests pass their own with the same methods.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Protocol

from hubd._tray.launcher import Launcher
from hubd._tray.menu import DesktopFacts
from hubd.errors import HubdError, ServiceManagerError
from hubd.timing import Timing

log = logging.getLogger(__name__)


class Desktop(Protocol):
    def facts(self, *, daemon_reachable: bool) -> DesktopFacts: ...
    def copy(self, text: str) -> str: ...
    def start_daemon(self) -> str: ...
    def set_start_at_login(self, on: bool) -> str: ...


def clipboard_command(
    environ: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> list[str] | None:
    """The program that puts its standard input on the clipboard here, or None."""
    if sys.platform == "darwin":
        found = which("pbcopy")
        return [found] if found else None
    candidates: list[list[str]] = []
    if environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    if environ.get("DISPLAY"):
        candidates += [
            ["xclip", "-selection", "clipboard", "-in"],
            ["xsel", "--clipboard", "--input"],
        ]
    for argv in candidates:
        found = which(argv[0])
        if found:
            return [found, *argv[1:]]
    return None


class SystemDesktop:
    def __init__(self, launcher: Launcher, timing: Timing, windows_available: bool) -> None:
        self._launcher = launcher
        self._timing = timing
        self._windows_available = windows_available
        self._starts_at_login: bool | None = None
        self._login_known = False

    # -- what the menu offers

    def facts(self, *, daemon_reachable: bool) -> DesktopFacts:
        if not self._login_known:
            # Asked once (on macOS it is a launchctl call) and kept: only the menu changes it.
            self._starts_at_login = self._read_start_at_login()
            self._login_known = True
        return DesktopFacts(
            service_installed=not daemon_reachable and self._service_installed(),
            starts_at_login=self._starts_at_login,
            can_copy=clipboard_command(os.environ) is not None or self._windows_available,
        )

    def _service_installed(self) -> bool:
        from hubd.service import installed_daemon

        try:
            return installed_daemon() is not None
        except HubdError:
            return False

    def _read_start_at_login(self) -> bool | None:
        from hubd.service import login_items

        try:
            return login_items().tray_starts_at_login()
        except HubdError as exc:
            log.debug("tray: start at login is not available here: %s", exc)
            return None

    # -- what the items do

    def copy(self, text: str) -> str:
        """Put TEXT on the clipboard; says with what."""
        command = clipboard_command(os.environ)
        if command is not None:
            try:
                # No pipes for its output: xclip stays in the background holding the text,
                # and a pipe it keeps open would make this wait for it.
                subprocess.run(
                    command,
                    input=text.encode(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=self._timing.tray_copy_timeout_s,
                    check=True,
                )
                return os.path.basename(command[0])
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("tray: %s could not copy: %s", command[0], exc)
        if not self._windows_available:
            raise HubdError(
                "nothing here can use the clipboard: install xclip (X11) or wl-clipboard "
                "(Wayland), or python3-tk"
            )
        self._launcher.window(
            "clipboard",
            "hubd._tray.windows.clipboard",
            ["--text", text, "--keep-s", str(self._timing.tray_clipboard_keep_s)],
        )
        return "Tk"

    def start_daemon(self) -> str:
        from hubd.service import installed_daemon

        manager = installed_daemon()
        if manager is None:
            raise ServiceManagerError(
                "hubd is not installed as a service: run `hubd service install` once"
            )
        return manager.start_now()

    def set_start_at_login(self, on: bool) -> str:
        from hubd.service import find_hubd_command, login_items

        done = login_items().set_tray_starts_at_login(on, find_hubd_command())
        self._starts_at_login = login_items().tray_starts_at_login()
        return done
