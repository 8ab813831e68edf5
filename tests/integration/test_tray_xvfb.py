"""`hubd tray` on a real X display with a real tray host (Xvfb + trayer), driven by xdotool.

The daemon is a real ControlServer on a temporary socket in front of a small fake of its
state. Screenshots are compared by pixel colour against the icon palette; two of them are
kept for the README (docs/img/tray-*.png).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hubd._tray.icons import STATE_COLOURS
from hubd._tray.state import TrayState
from hubd._tray.windows.tk import ERROR_COLOUR
from hubd.control import ControlServer
from tests.pixels import rgb
from tests.tray_fakes import URL, FakeDaemon, recording_browser, serving, short_temp_dir

try:
    from tests.integration.xvfb import Trayer, Xvfb, missing_tools, started, wait_until
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from xvfb import Trayer, Xvfb, missing_tools, started, wait_until  # type: ignore[no-redef]

pytestmark = pytest.mark.integration

ICON_CLASS = "hubdSystemTrayIcon"  # pystray names the xorg window "<name>SystemTrayIcon"
# The README's screenshots are refreshed only when asked: HUBD_SAVE_SCREENSHOTS=1 pytest ...
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SAVE_SCREENSHOTS = os.environ.get("HUBD_SAVE_SCREENSHOTS") == "1"
# The tray polls every 2 s; a change shows within one poll plus drawing.
STATE_CHANGE_TIMEOUT_S = 8.0
DESKTOP_RGB = (52, 101, 164)  # a plain desktop blue, far from every icon colour


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def x() -> Iterator[Xvfb]:
    missing = missing_tools()
    if missing:
        pytest.fail(
            f"tray integration tests need {', '.join(missing)} (apt-get install "
            "xvfb trayer xdotool imagemagick)"
        )
    with Xvfb() as display:
        display.paint_root(DESKTOP_RGB)
        yield display


@pytest.fixture(scope="module")
def tray_host(x: Xvfb) -> Iterator[Trayer]:
    with Trayer(x) as trayer:
        yield trayer


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_temp_dir("hubd-trayx-") as path:
        yield path


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon(users=("alice",))


@pytest.fixture
def server(daemon: FakeDaemon, workdir: Path) -> Iterator[ControlServer]:
    with serving(daemon, workdir / "control.sock") as srv:
        yield srv


def tray_env(x: Xvfb, workdir: Path) -> dict[str, str]:
    """The tray's environment: this display, a recording browser, its own runtime folder
    (where the one-tray-per-session lock lives)."""
    return {
        **x.env,
        "BROWSER": recording_browser(workdir),
        "PYSTRAY_BACKEND": "xorg",
        "RUNTIME_DIRECTORY": str(workdir / "run"),
    }


class Tray:
    def __init__(
        self, x: Xvfb, process: subprocess.Popen[str], window: int, browser_log: Path, stderr: Path
    ) -> None:
        self.x, self.process, self.window, self.browser_log = x, process, window, browser_log
        self.stderr = stderr

    def colour_counts(self) -> dict[TrayState, int]:
        """How many pixels of the docked icon are near each state's colour."""
        image = self.x.screenshot(self.window)
        counts = dict.fromkeys(TrayState, 0)
        for n, pixel in image.getcolors(maxcolors=1 << 16) or []:
            for state, colour in STATE_COLOURS.items():
                if sum(abs(a - b) for a, b in zip(rgb(pixel), colour, strict=True)) <= 30:
                    counts[state] += n
        return counts

    def shows(self, state: TrayState) -> bool:
        counts = self.colour_counts()
        return counts[state] >= 40 and counts[state] == max(counts.values())


@pytest.fixture
def tray(x: Xvfb, tray_host: Trayer, server: ControlServer, workdir: Path) -> Iterator[Tray]:
    env = tray_env(x, workdir)
    stderr = workdir / "tray.stderr"
    with (
        stderr.open("w") as err,
        started(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-m",
                "hubd",
                "tray",
                "--socket",
                str(server.path),
            ],
            env,
            stderr=err,
        ) as process,
    ):
        try:
            windows = wait_until(
                lambda: x.find_windows(classname=ICON_CLASS),
                timeout_s=20,
                what="the tray icon to dock",
            )
            yield Tray(x, process, windows[0], workdir / "browser.log", stderr)
            assert process.poll() in (None, 0), "the tray died during the test"
            # As at logout: SIGTERM ends the tray promptly and cleanly.
            process.terminate()
            assert process.wait(timeout=5) == 0
        except BaseException:
            if process.poll() is None:
                # Stuck: SIGABRT makes faulthandler print every thread's stack to stderr.
                process.send_signal(signal.SIGABRT)
                process.wait(timeout=5)
            raise
        finally:
            sys.stderr.write(stderr.read_text())  # shown by pytest when a test fails
        assert "Traceback" not in stderr.read_text()


# ---------------------------------------------------------------- the icon


def test_icon_docks_and_its_pixels_follow_the_hub_state(
    tray: Tray, daemon: FakeDaemon, server: ControlServer
) -> None:
    x = tray.x
    # Docked: trayer reparented the icon into its panel at the top right of the screen.
    left, top, width, height = x.geometry(tray.window)
    assert top < 40 and left > 600 and 16 <= width <= 64 and 16 <= height <= 64
    wait_until(lambda: tray.shows(TrayState.RUNNING), what="the running (green) icon")
    running = x.screenshot(tray.window)
    _save_tray_picture(x, DOCS_IMG / "tray-running.png")

    for state, look in (
        ("failing", TrayState.FAILING),
        ("stopped", TrayState.STOPPED),
        ("restarting", TrayState.STARTING),
    ):
        daemon.state = state
        wait_until(
            functools.partial(tray.shows, look),
            timeout_s=STATE_CHANGE_TIMEOUT_S,
            what=f"the {look.value} icon",
        )
    assert x.screenshot(tray.window).tobytes() != running.tobytes()

    server.close()  # the daemon goes away: a grey, hollow icon
    wait_until(
        lambda: tray.shows(TrayState.UNREACHABLE),
        timeout_s=STATE_CHANGE_TIMEOUT_S,
        what="the grey icon",
    )


def test_the_icon_docks_in_a_tray_host_that_starts_later(
    server: ControlServer, workdir: Path
) -> None:
    # At login the tray may start before the panel; pystray alone would never dock then.
    with (
        Xvfb() as x,
        (workdir / "tray.stderr").open("w") as err,
        started(
            [sys.executable, "-m", "hubd", "tray", "--socket", str(server.path)],
            {**x.env, "PYSTRAY_BACKEND": "xorg"},
            stderr=err,
        ) as process,
    ):
        time.sleep(1.5)
        assert process.poll() is None
        assert not x.find_windows(classname=ICON_CLASS)
        with Trayer(x):
            window = wait_until(
                lambda: x.find_windows(classname=ICON_CLASS), timeout_s=10, what="the icon to dock"
            )[0]
            assert x.geometry(window)[1] < 40  # in the panel at the top
            process.terminate()
            assert process.wait(timeout=5) == 0
    assert "Traceback" not in (workdir / "tray.stderr").read_text()


def test_a_second_tray_of_the_session_says_so_and_shows_no_second_icon(
    tray: Tray, server: ControlServer, workdir: Path
) -> None:
    # The autostart entry ran one; someone clicks the launcher in the application menu too.
    second = subprocess.run(
        [sys.executable, "-m", "hubd", "tray", "--socket", str(server.path)],
        env=tray_env(tray.x, workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"a hubd tray is already running (pid {tray.process.pid})\n"
    assert second.stderr == ""
    assert tray.x.find_windows(classname=ICON_CLASS, only_visible=False) == [tray.window]
    assert tray.process.poll() is None  # the first one goes on


def test_a_left_click_on_the_icon_opens_the_hub(tray: Tray) -> None:
    # pystray's xorg backend never receives clicks; hubd._tray.backends's fix makes them arrive.
    tray.x.click(tray.window, 1)
    wait_until(tray.browser_log.exists, what="the browser to be asked")
    assert tray.browser_log.read_text().split() == [URL]


def test_a_right_click_pops_up_the_menu_and_a_choice_runs(tray: Tray) -> None:
    x = tray.x
    before = set(x.find_windows(classname="hubd"))
    tray.x.click(tray.window, 3)
    time.sleep(0.2)
    wait_until(lambda: _menu_is_up(x, tray.window), what="the pop-up menu")
    _save_menu_picture(x, DOCS_IMG / "tray-menu.png")
    # Down skips the disabled headline: first Open, then Show address.
    x.run("xdotool", "key", "Down", "Down", "Return")
    windows = wait_until(
        lambda: x.find_windows(name="JupyterHub address"), what="the address window"
    )
    assert windows[0] not in before
    _save_screen_region(x, DOCS_IMG / "tray-address.png", windows[0])

    # Quitting the tray (here by SIGTERM, as at logout) closes the windows it opened.
    tray.process.terminate()
    assert tray.process.wait(timeout=10) == 0
    wait_until(lambda: not x.find_windows(name="JupyterHub address"), what="it to close")


def _menu_is_up(x: Xvfb, icon: int) -> bool:
    # The pop-up is a Tk menu opened just below the icon: its light grey rows cover the
    # blue desktop there.
    left, top, _width, height = x.geometry(icon)
    r, _g, b = rgb(x.screenshot().getpixel((min(left + 40, 790), top + height + 60)))
    return bool(r > 150 and abs(r - b) < 30)


def _save_tray_picture(x: Xvfb, path: Path) -> None:
    """The panel with the icon, enlarged so it reads in a README."""
    if not SAVE_SCREENSHOTS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    image = x.screenshot().crop((800 - 100, 0, 800, 40))
    image.resize((image.width * 3, image.height * 3), Image.Resampling.LANCZOS).save(path)


def _save_menu_picture(x: Xvfb, path: Path) -> None:
    if not SAVE_SCREENSHOTS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    x.screenshot().crop((800 - 340, 0, 800, 400)).save(path)


def _save_screen_region(x: Xvfb, path: Path, window: int) -> None:
    if not SAVE_SCREENSHOTS:
        return
    left, top, _width, height = x.geometry(window)
    path.parent.mkdir(parents=True, exist_ok=True)
    x.screenshot().crop((max(0, left - 10), 0, 800, min(600, top + height + 10))).save(path)


# ---------------------------------------------------------------- the add-user dialog


def _red_pixels(image: Image.Image) -> int:
    red = tuple(int(ERROR_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    colours = image.getcolors(maxcolors=1 << 20) or []
    return sum(
        n
        for n, pixel in colours
        if sum(abs(a - b) for a, b in zip(rgb(pixel), red, strict=True)) <= 60
    )


@pytest.fixture
def dialog(x: Xvfb, server: ControlServer) -> Iterator[tuple[subprocess.Popen[str], int]]:
    with started(
        [sys.executable, "-m", "hubd._tray.windows.dialog", "--socket", str(server.path)],
        x.env,
        stdout=subprocess.PIPE,
    ) as process:
        window = wait_until(
            lambda: x.find_windows(name="Add a JupyterHub user"), timeout_s=15, what="the dialog"
        )[0]
        yield process, window


def _fill_in(x: Xvfb, window: int, name: str, password: str, again: str) -> None:
    x.run("xdotool", "windowfocus", "--sync", str(window))
    x.run("xdotool", "type", "--delay", "2", name)
    x.run("xdotool", "key", "Tab")
    x.run("xdotool", "type", "--delay", "2", password)
    x.run("xdotool", "key", "Tab")
    x.run("xdotool", "type", "--delay", "2", again)
    x.run("xdotool", "key", "Return")


def test_add_user_dialog_creates_the_user(
    x: Xvfb, dialog: tuple[subprocess.Popen[str], int], daemon: FakeDaemon
) -> None:
    process, window = dialog
    _fill_in(x, window, "carol", "correct horse", "correct horse")
    assert process.wait(timeout=15) == 0
    assert process.stdout is not None and process.stdout.read().strip() == "carol"
    assert daemon.users["carol"]["admin"] is False


@pytest.mark.parametrize(
    ("name", "password", "again", "reaches_daemon"),
    [
        ("Bob!", "correct horse", "correct horse", True),  # the daemon refuses the name
        ("bob", "correct horse", "correct h0rse", False),  # caught before asking
    ],
)
def test_add_user_dialog_shows_errors_inline_and_creates_nothing(
    x: Xvfb,
    dialog: tuple[subprocess.Popen[str], int],
    daemon: FakeDaemon,
    name: str,
    password: str,
    again: str,
    reaches_daemon: bool,
) -> None:
    process, window = dialog
    red_before = _red_pixels(x.screenshot(window))
    _fill_in(x, window, name, password, again)
    wait_until(
        lambda: _red_pixels(x.screenshot(window)) > red_before + 50,
        what="an error in red in the dialog",
    )
    assert process.poll() is None, "the dialog must stay open to correct the input"
    assert daemon.add_user_calls == ([name] if reaches_daemon else [])
    assert set(daemon.users) == {"alice"}
