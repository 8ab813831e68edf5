"""Start the tray's helper windows and the desktop's opener, and clean up after them.

Each helper window is a `python -m hubd._tray.windows.…` process (see hubd._tray.windows.tk).
The launcher keeps one process per kind: asking again replaces the old window, so the new
one is on top and no stale copies pile up. Closing the launcher ends every window it started.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from hubd.timing import Timing

log = logging.getLogger(__name__)

OnExit = Callable[[int, str], None]


class Launcher:
    def __init__(self, python: str = sys.executable, *, timing: Timing) -> None:
        self._python = python
        self._stop_wait_s = timing.tray_window_stop_wait_s
        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen[str]] = {}
        self._closed = False

    def window(
        self,
        kind: str,
        module: str,
        args: Sequence[str] = (),
        stdin_text: str | None = None,
        on_exit: OnExit | None = None,
    ) -> None:
        """Start `python -m module args` as the one window of this kind.

        `on_exit(returncode, stdout)` runs on a helper thread once it ends, unless it was
        replaced or the launcher closed.
        """
        with self._lock:
            if self._closed:
                return
            old = self._running.pop(kind, None)
            if old is not None:
                _stop(old, self._stop_wait_s)
            try:
                process = subprocess.Popen(
                    [self._python, "-m", module, *args],
                    text=True,
                    stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                log.error("tray: cannot start %s: %s", module, exc)
                return
            self._running[kind] = process
        threading.Thread(
            target=self._watch,
            args=(kind, process, stdin_text, on_exit),
            name=f"hubd-tray-{kind}",
            daemon=True,
        ).start()

    def _watch(
        self,
        kind: str,
        process: subprocess.Popen[str],
        stdin_text: str | None,
        on_exit: OnExit | None,
    ) -> None:
        try:
            out, _ = process.communicate(stdin_text)
        except (OSError, ValueError):
            out = ""
        with self._lock:
            current = self._running.get(kind) is process
            if current:
                del self._running[kind]
        if current and on_exit is not None and not self._closed:
            on_exit(process.returncode, out or "")

    def is_open(self, kind: str) -> bool:
        with self._lock:
            process = self._running.get(kind)
            return process is not None and process.poll() is None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running, self._running = list(self._running.values()), {}
        for process in running:
            _stop(process, self._stop_wait_s)


def _stop(process: subprocess.Popen[str], wait_s: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        process.kill()


def desktop_opener() -> list[str] | None:
    """The command that opens a file with the user's chosen application, if there is one."""
    if sys.platform == "darwin":
        return ["open"]
    found = shutil.which("xdg-open")
    return [found] if found else None


def open_with_desktop(path: Path) -> bool:
    """Open `path` in the desktop's application for it; False when that is not possible."""
    opener = desktop_opener()
    if opener is None:
        return False
    try:
        subprocess.Popen(
            [*opener, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("tray: %s failed: %s", opener[0], exc)
        return False
    return True
