"""A throwaway X display and desktop session with real tray hosts, for the tray's tests.

`Xvfb` starts a virtual screen on a free display number; `Trayer` docks X11 (XEmbed) tray
icons on it (Debian's `trayer`, a GTK system tray). `SessionBus` is a private D-Bus session
bus (`dbus-daemon --session`, with its own XDG folders), and `XfcePanel` a real xfce4-panel
on it whose Status Tray plugin hosts StatusNotifierItems (and XEmbed icons). All are context
managers that always stop what they started, including the services the bus activated.
Helpers find windows with `xdotool`, take screenshots with ImageMagick's `import`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

from tests.patience import patient

SCREEN = "800x600x24"
REQUIRED_TOOLS = ("Xvfb", "trayer", "xdotool", "import")
DESKTOP_TOOLS = ("dbus-daemon", "xfce4-panel")


def missing_tools(tools: tuple[str, ...] = REQUIRED_TOOLS) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def wait_until(
    predicate: Callable[[], Any],
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> Any:
    timeout_s = patient(timeout_s)
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


def _stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop `process`, started in its own session, and whatever it started there."""
    _stop(process)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


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


class SessionBus:
    """A private D-Bus session bus; `bus.env` is `env` with the bus and its own XDG folders.

    Services the bus starts on demand (xfconfd for the panel) get the same XDG folders, so
    nothing reads or writes the real user's settings; they are stopped with the bus.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="hubd-bus-", dir="/tmp"))
        self.config_home = self.home / "config"
        self.address = ""
        self.env: dict[str, str] = {
            **env,
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "XDG_RUNTIME_DIR": str(self.home / "runtime"),
            "NO_AT_BRIDGE": "1",  # GTK would start an accessibility bus of its own
            "GIO_USE_VFS": "local",
        }
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SessionBus:
        (self.home / "runtime").mkdir(mode=0o700)
        self._process = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        self.address = self._process.stdout.readline().strip()
        if not self.address:
            self.__exit__(None, None, None)
            raise RuntimeError("dbus-daemon did not start")
        self.env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            _stop_group(self._process)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        shutil.rmtree(self.home, ignore_errors=True)

    def stop(self) -> None:
        """End the bus now, as at logout."""
        self.__exit__(None, None, None)


# One panel along the top of the screen with only the Status Tray plugin ("systray"), which in
# xfce 4.18 hosts StatusNotifierItems (as the session's StatusNotifierWatcher) and XEmbed icons.
# Read by xfconfd, which the bus starts for the panel.
_XFCE_PANEL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="{size}"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="systray"/>
  </property>
</channel>
"""
PANEL_HEIGHT_PX = 32


class XfcePanel:
    """xfce4-panel on `x` and `bus`; waits until it hosts StatusNotifierItems and XEmbed."""

    def __init__(self, x: Xvfb, bus: SessionBus, host_ready: Callable[[], bool]) -> None:
        self.x, self.bus, self._host_ready = x, bus, host_ready
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> XfcePanel:
        channel = self.bus.config_home / "xfce4" / "xfconf" / "xfce-perchannel-xml"
        channel.mkdir(parents=True, exist_ok=True)
        (channel / "xfce4-panel.xml").write_text(_XFCE_PANEL_XML.format(size=PANEL_HEIGHT_PX))
        env = {**self.bus.env, "DISPLAY": self.x.display}
        self._process = subprocess.Popen(
            ["xfce4-panel", "--disable-wm-check"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until(self.x.systray_owner, timeout_s=20, what="the panel to own the tray")
            wait_until(self._host_ready, timeout_s=20, what="the panel's StatusNotifier host")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            _stop_group(self._process)
            self._process = None
