"""A throwaway X display with a real tray host, for the tray's integration tests.

`Xvfb` starts a virtual screen on a free display number; `Trayer` docks tray icons on it
(Debian's `trayer`, a GTK system tray). Both are context managers that always stop what they
started. Helpers find windows with `xdotool`, take screenshots with ImageMagick's `import`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO
from typing import Any

from PIL import Image

SCREEN = "800x600x24"
REQUIRED_TOOLS = ("Xvfb", "trayer", "xdotool", "import")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def wait_until(
    predicate: Callable[[], Any],
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def _stop(process: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Xvfb:
    """`with Xvfb() as x:` a display; `x.env` is os.environ with DISPLAY set to it."""

    def __init__(self, screen: str = SCREEN) -> None:
        self.screen = screen
        self.display = ""
        self.env: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Xvfb:
        read_end, write_end = os.pipe()
        try:
            # -displayfd: Xvfb picks a free display number and writes it once it accepts
            # connections, so there is no race and no clash with another test run.
            self._process = subprocess.Popen(
                [
                    "Xvfb",
                    "-displayfd",
                    str(write_end),
                    "-screen",
                    "0",
                    self.screen,
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write_end,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(write_end)
            write_end = -1
            with os.fdopen(read_end, "rb") as pipe:
                read_end = -1
                number = pipe.readline().strip().decode()
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
        if not number:
            self.__exit__(None, None, None)
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        self.env = {**os.environ, "DISPLAY": self.display}
        self.env.pop("WAYLAND_DISPLAY", None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None

    # -- helpers that act on this display

    def run(self, *args: str, check: bool = True, timeout_s: float = 10.0) -> str:
        result = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args[0]} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def find_windows(
        self, *, name: str | None = None, classname: str | None = None, only_visible: bool = True
    ) -> list[int]:
        args = ["xdotool", "search"]
        if only_visible:
            args.append("--onlyvisible")
        if name is not None:
            args += ["--name", name]
        elif classname is not None:
            args += ["--classname", classname]
        out = self.run(*args, check=False)
        return [int(line) for line in out.split()]

    def geometry(self, window: int) -> tuple[int, int, int, int]:
        """x, y (on the screen), width, height."""
        values = dict(
            line.split("=", 1)
            for line in self.run("xdotool", "getwindowgeometry", "--shell", str(window)).split()
        )
        return (int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"]))

    def screenshot(self, window: int | None = None) -> Image.Image:
        target = "root" if window is None else hex(window)
        data = subprocess.run(
            ["import", "-window", target, "png:-"],
            env=self.env,
            capture_output=True,
            timeout=15,
            check=True,
        ).stdout
        return Image.open(BytesIO(data)).convert("RGB")

    def click(self, window: int, button: int = 1, x: int = 4, y: int = 4) -> None:
        self.run(
            "xdotool", "mousemove", "--window", str(window), str(x), str(y), "click", str(button)
        )

    def paint_root(self, rgb: tuple[int, int, int]) -> None:
        """Give the empty screen a desktop-like colour (screenshots read better)."""
        from Xlib import display as xdisplay

        conn = xdisplay.Display(self.display)
        try:
            root = conn.screen().root
            root.change_attributes(background_pixel=(rgb[0] << 16) | (rgb[1] << 8) | rgb[2])
            root.clear_area()
            conn.sync()
        finally:
            conn.close()

    def systray_owner(self) -> int:
        """The window owning the system-tray selection (0: no tray host yet)."""
        from Xlib import display as xdisplay

        conn = xdisplay.Display(self.display)
        try:
            atom = conn.intern_atom(f"_NET_SYSTEM_TRAY_S{conn.get_default_screen()}")
            owner = conn.get_selection_owner(atom)
            return int(owner.id) if owner else 0
        finally:
            conn.close()


class Trayer:
    """A tray host on the display, docked to the top right; waits until it owns the tray."""

    def __init__(self, x: Xvfb) -> None:
        self.x = x
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Trayer:
        self._process = subprocess.Popen(
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
                "--height",
                "32",
                "--iconspacing",
                "4",
                "--transparent",
                "false",
                "--tint",
                "0xf0f0f0",
                "--SetDockType",
                "false",
                "--SetPartialStrut",
                "false",
            ],
            env=self.x.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(self.x.systray_owner, timeout_s=10, what="trayer to own the tray")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None


@contextlib.contextmanager
def started(
    args: list[str], env: Mapping[str, str], **popen: Any
) -> Iterator[subprocess.Popen[str]]:
    """A process that is always stopped when the block ends, whatever happened."""
    process = subprocess.Popen(args, env=dict(env), text=True, **popen)
    try:
        yield process
    finally:
        _stop(process)
