"""`hubd tray` as a StatusNotifierItem, in a real desktop session: Xvfb, a private D-Bus
session bus, and xfce4-panel with its Status Tray plugin as the host.

The tests look from the panel's side: the item the watcher lists, its properties, the menu
read with `GetLayout` as a host reads it, `Activate` as a host sends it on a left click, and
pixels on the screen. The daemon is a real ControlServer in front of a fake of its state.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hubd._tray.icons import STATE_COLOURS
from hubd._tray.state import TrayState
from hubd.control import ControlServer
from tests.pixels import rgb
from tests.tray_fakes import URL, FakeDaemon, recording_browser, serving, short_temp_dir

try:
    from tests.integration.dbus_client import BusClient, FakeNotifications
    from tests.integration.xvfb import (
        DESKTOP_TOOLS,
        PANEL_HEIGHT_PX,
        SessionBus,
        Trayer,
        XfcePanel,
        Xvfb,
        missing_tools,
        started,
        wait_until,
    )
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from dbus_client import BusClient, FakeNotifications  # type: ignore[no-redef]
    from xvfb import (  # type: ignore[no-redef]
        DESKTOP_TOOLS,
        PANEL_HEIGHT_PX,
        SessionBus,
        Trayer,
        XfcePanel,
        Xvfb,
        missing_tools,
        started,
        wait_until,
    )

pytestmark = pytest.mark.integration

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"
NOTIFICATIONS = "org.freedesktop.Notifications"
ICON_CLASS = "hubdSystemTrayIcon"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SAVE_SCREENSHOTS = os.environ.get("HUBD_SAVE_SCREENSHOTS") == "1"
STATE_CHANGE_TIMEOUT_S = 8.0
# The tray's wait for a tray host before it warns, shortened for the tests.
HOST_WAIT = "tray_host_wait_s=1"
DESKTOP_RGB = (52, 101, 164)  # a plain desktop blue, far from every icon colour


# ---------------------------------------------------------------- the session


@pytest.fixture(scope="module")
def x() -> Iterator[Xvfb]:
    missing = missing_tools((*DESKTOP_TOOLS, "Xvfb", "import", "xdotool", "trayer"))
    if missing:
        pytest.fail(
            f"tray desktop tests need {', '.join(missing)} (apt-get install xvfb "
            "xfce4-panel dbus trayer xdotool imagemagick)"
        )
    with Xvfb() as display:
        display.paint_root(DESKTOP_RGB)
        yield display


@pytest.fixture(scope="module")
def bus(x: Xvfb) -> Iterator[SessionBus]:
    with SessionBus(x.env) as session:
        yield session


@pytest.fixture(scope="module")
def host(bus: SessionBus) -> Iterator[BusClient]:
    """The panel's view of the bus."""
    with BusClient(bus.address) as client:
        client.listen(f"type='signal',interface='{ITEM}'")
        client.listen(f"type='signal',interface='{MENU}'")
        yield client


@pytest.fixture(scope="module")
def panel(x: Xvfb, bus: SessionBus, host: BusClient) -> Iterator[XfcePanel]:
    def sni_host_ready() -> bool:
        if host.name_owner(WATCHER) is None:
            return False
        return bool(host.get(WATCHER, WATCHER_PATH, WATCHER, "IsStatusNotifierHostRegistered"))

    with XfcePanel(x, bus, sni_host_ready) as xfce:
        yield xfce


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_temp_dir("hubd-traysni-") as path:
        yield path


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon(users=("alice",))


@pytest.fixture
def server(daemon: FakeDaemon, workdir: Path) -> Iterator[ControlServer]:
    with serving(daemon, workdir / "control.sock") as srv:
        yield srv


def tray_env(session: dict[str, str], workdir: Path) -> dict[str, str]:
    env = {**session, "BROWSER": recording_browser(workdir), "HUBD_TIMING": HOST_WAIT}
    env.pop("PYSTRAY_BACKEND", None)  # the tray chooses by itself
    env.pop("XDG_CURRENT_DESKTOP", None)
    return env


class SniTray:
    """A running `hubd tray` and its item as the panel sees it."""

    def __init__(self, process: subprocess.Popen[str], host: BusClient, stderr: Path) -> None:
        self.process, self.host, self.stderr = process, host, stderr
        self.service = ""

    def find_item(self) -> bool:
        items = self.host.get(WATCHER, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems")
        mine = [item for item in items if f"-{self.process.pid}-" in item]
        if mine:
            self.service = mine[0].split("/", 1)[0]
        return bool(mine)

    def prop(self, name: str) -> Any:
        return self.host.get(self.service, "/StatusNotifierItem", ITEM, name)

    def menu(self) -> list[dict[str, Any]]:
        """The menu as a host reads it: (label, enabled, type, children) per item."""
        path = self.prop("Menu")
        _rev, layout = self.host.call(self.service, path, MENU, "GetLayout", "iias", [0, -1, []])

        def read(node: list[Any]) -> dict[str, Any]:
            _id, props, children = node
            props = {k: v.value for k, v in props.items()}
            return {
                "id": _id,
                "label": props.get("label", ""),
                "enabled": props.get("enabled", True),
                "type": props.get("type", "standard"),
                "checked": props.get("toggle-state") == 1,
                "children": [read(child.value) for child in children],
            }

        children: list[dict[str, Any]] = read(layout)["children"]
        return children

    def item(self, label: str) -> dict[str, Any]:
        return next(item for item in self.menu() if item["label"].startswith(label))

    def click(self, label: str) -> None:
        path = self.prop("Menu")
        from dbus_fast import Variant

        entry = self.item(label)
        self.host.call(
            self.service, path, MENU, "Event", "isvu", [entry["id"], "clicked", Variant("s", ""), 0]
        )

    def activate(self) -> None:
        self.host.call(self.service, "/StatusNotifierItem", ITEM, "Activate", "ii", [0, 0])

    def log(self) -> str:
        return self.stderr.read_text()


def _start_tray(
    env: dict[str, str], server: ControlServer, stderr: Path, python_prelude: str = ""
) -> Any:
    command = [sys.executable, "-X", "faulthandler", "-m", "hubd"]
    if python_prelude:
        command = [
            sys.executable,
            "-c",
            f"{python_prelude}; import sys; from hubd.cli import main; sys.exit(main())",
        ]
    return started(
        [*command, "tray", "--socket", str(server.path)],
        env,
        stderr=stderr.open("w"),
    )


def _finish(tray: SniTray) -> None:
    process = tray.process
    try:
        assert process.poll() in (None, 0), "the tray died during the test"
        # As at logout: SIGTERM ends the tray promptly and cleanly.
        process.terminate()
        assert process.wait(timeout=5) == 0
    except BaseException:
        if process.poll() is None:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            process.wait(timeout=5)
        raise
    finally:
        sys.stderr.write(tray.log())
    assert "Traceback" not in tray.log()


@pytest.fixture
def sni_tray(
    x: Xvfb,
    bus: SessionBus,
    panel: XfcePanel,
    host: BusClient,
    server: ControlServer,
    workdir: Path,
) -> Iterator[SniTray]:
    stderr = workdir / "tray.stderr"
    with _start_tray(tray_env(bus.env, workdir), server, stderr) as process:
        tray = SniTray(process, host, stderr)
        try:
            wait_until(tray.find_item, timeout_s=20, what="the tray's item at the watcher")
        except AssertionError:
            sys.stderr.write(tray.log())
            raise
        yield tray
        _finish(tray)


def _panel_counts(x: Xvfb) -> dict[TrayState, int]:
    image = x.screenshot().crop((0, 0, 800, PANEL_HEIGHT_PX))
    counts = dict.fromkeys(TrayState, 0)
    for n, pixel in image.getcolors(maxcolors=1 << 16) or []:
        for state, colour in STATE_COLOURS.items():
            if sum(abs(a - b) for a, b in zip(rgb(pixel), colour, strict=True)) <= 30:
                counts[state] += n
    return counts


def _panel_shows(x: Xvfb, state: TrayState) -> bool:
    counts = _panel_counts(x)
    return counts[state] >= 40 and counts[state] == max(counts.values())


# ---------------------------------------------------------------- the icon and its menu


def test_the_item_shows_in_the_panel_with_its_menu_and_follows_the_state(
    x: Xvfb, sni_tray: SniTray, daemon: FakeDaemon, host: BusClient
) -> None:
    assert sni_tray.prop("Status") == "Active"
    assert sni_tray.prop("Title").startswith("JupyterHub is running")
    pixmaps = sni_tray.prop("IconPixmap")
    assert {w for w, _h, _data in pixmaps} >= {16, 22, 24, 32}
    assert all(len(data) == w * h * 4 for w, h, data in pixmaps)
    wait_until(lambda: _panel_shows(x, TrayState.RUNNING), what="the green icon in the panel")
    _save_panel(x, DOCS_IMG / "tray-sni-running.png")

    menu = sni_tray.menu()
    labels = [(item["label"], item["enabled"]) for item in menu if item["type"] != "separator"]
    assert ("Open JupyterHub", True) in labels
    assert ("Start", False) in labels
    assert ("Stop", True) in labels
    assert labels[-1] == ("Quit tray", True)
    assert sum(item["type"] == "separator" for item in menu) >= 3
    _right_click_shows_the_menu(x, DOCS_IMG / "tray-sni-menu.png")
    users = sni_tray.item("Users")
    assert [(c["label"], c["checked"]) for c in users["children"]] == [
        ("alice (admin) — server running", True)
    ]

    sender = host.name_owner(sni_tray.service)
    icons_before = len(host.seen("NewIcon", sender))
    daemon.desired, daemon.state = "stopped", "stopped"
    wait_until(
        lambda: len(host.seen("NewIcon", sender)) > icons_before,
        timeout_s=STATE_CHANGE_TIMEOUT_S,
        what="NewIcon",
    )
    assert sni_tray.prop("IconPixmap") != pixmaps
    wait_until(lambda: _panel_shows(x, TrayState.STOPPED), what="the slate icon in the panel")
    wait_until(lambda: sni_tray.item("Start")["enabled"], what="Start to be enabled")
    assert not sni_tray.item("Open JupyterHub")["enabled"]
    assert not sni_tray.item("Stop")["enabled"]
    assert host.seen("ItemsPropertiesUpdated", sender) or host.seen("LayoutUpdated", sender)
    assert host.seen("NewToolTip", sender)
    assert sni_tray.prop("ToolTip")[2].startswith("JupyterHub is stopped")


def test_a_left_click_opens_the_hub_and_quit_ends_the_tray_cleanly(
    x: Xvfb, sni_tray: SniTray, workdir: Path, daemon: FakeDaemon
) -> None:
    browser_log = workdir / "browser.log"
    wait_until(lambda: _panel_shows(x, TrayState.RUNNING), what="the icon in the panel")
    px, py = _icon_position(x)
    x.run("xdotool", "mousemove", str(px), str(py), "click", "1")  # the panel sends Activate
    wait_until(browser_log.exists, what="the browser to be asked")
    assert browser_log.read_text().split() == [URL]
    sni_tray.activate()  # the same call straight from the host's side of the bus
    wait_until(lambda: len(browser_log.read_text().split()) == 2, what="a second open")

    sni_tray.click("Stop")  # a menu choice, as the panel reports it
    wait_until(lambda: "stop" in daemon.calls, what="the daemon to be told to stop")

    sni_tray.click("Quit tray")
    assert sni_tray.process.wait(timeout=10) == 0
    wait_until(lambda: not sni_tray.find_item(), what="the item to leave the panel")


# ---------------------------------------------------------------- notifications


def test_notices_go_to_the_notification_service(
    sni_tray: SniTray, bus: SessionBus, daemon: FakeDaemon
) -> None:
    service = FakeNotifications()
    with BusClient(bus.address) as desktop:
        desktop.serve(NOTIFICATIONS, "/org/freedesktop/Notifications", service)
        daemon.state, daemon.last_error = "failing", "the hub exited with code 1"
        wait_until(lambda: service.shown, timeout_s=STATE_CHANGE_TIMEOUT_S, what="a notification")
    notice = service.shown[0]
    assert notice.app_name == "hubd"
    assert notice.summary == "JupyterHub keeps crashing"
    assert "exited with code 1" in notice.body
    _width, height, stride, alpha, bits, channels, data = notice.hints["image-data"]
    assert alpha and bits == 8 and channels == 4 and len(data) == stride * height
    assert sni_tray.prop("ToolTip")[3] == ""  # shown by the service, not kept in the tooltip
    assert sni_tray.prop("Status") == "NeedsAttention"  # panels keep it in view


def test_without_a_notification_service_notices_wait_in_the_tooltip(
    sni_tray: SniTray, host: BusClient, daemon: FakeDaemon
) -> None:
    assert host.name_owner(NOTIFICATIONS) is None
    daemon.state = "failing"
    wait_until(
        lambda: "keeps crashing" in sni_tray.prop("ToolTip")[3],
        timeout_s=STATE_CHANGE_TIMEOUT_S,
        what="the notice in the tooltip",
    )
    # _finish: SIGTERM still ends the tray with 0 and no traceback.


# ---------------------------------------------------------------- never silent


def test_without_tkinter_the_tray_says_so_and_greys_out_the_windows(
    x: Xvfb,
    bus: SessionBus,
    panel: XfcePanel,
    host: BusClient,
    server: ControlServer,
    workdir: Path,
) -> None:
    stderr = workdir / "tray.stderr"
    with _start_tray(
        tray_env(bus.env, workdir), server, stderr, "import sys; sys.modules['tkinter'] = None"
    ) as process:
        tray = SniTray(process, host, stderr)
        wait_until(tray.find_item, timeout_s=20, what="the tray's item at the watcher")
        assert tray.log().count("sudo apt install python3-tk") == 1
        for label in ("Show address", "Add user"):
            item = tray.item(label)
            assert not item["enabled"] and item["label"].endswith("(needs Tk)")
        assert tray.item("Open JupyterHub")["enabled"]
        assert tray.item("Quit tray")["enabled"]
        wait_until(lambda: _panel_shows(x, TrayState.RUNNING), what="the icon in the panel")
        _right_click_shows_the_menu(x, DOCS_IMG / "tray-sni-menu-no-tk.png")
        _finish(tray)


def test_with_no_tray_host_yet_the_tray_warns_then_shows_and_ends_cleanly_at_logout(
    server: ControlServer, workdir: Path
) -> None:
    # At a GNOME login the tray may start before the shell's AppIndicator extension: it is
    # a StatusNotifierItem from the start (no X11 icon GNOME would never show), warns once,
    # and appears when a tray host comes up.
    stderr = workdir / "tray.stderr"
    with Xvfb() as x, SessionBus(x.env) as session, BusClient(session.address) as host:
        env = {**tray_env(session.env, workdir), "XDG_CURRENT_DESKTOP": "GNOME"}
        with _start_tray(env, server, stderr) as process:
            wait_until(
                lambda: "AppIndicator extension" in stderr.read_text(),
                what="the no-tray-host warning",
            )
            assert stderr.read_text().count("the tray icon is not shown") == 1
            assert not x.find_windows(classname=ICON_CLASS, only_visible=False)

            def sni_host_ready() -> bool:
                return host.name_owner(WATCHER) is not None and bool(
                    host.get(WATCHER, WATCHER_PATH, WATCHER, "IsStatusNotifierHostRegistered")
                )

            with XfcePanel(x, session, sni_host_ready):
                tray = SniTray(process, host, stderr)
                wait_until(tray.find_item, timeout_s=10, what="the item at the new panel")
                wait_until(lambda: _panel_shows(x, TrayState.RUNNING), what="the icon")
                session.stop()  # logout: the session bus goes away
                assert process.wait(timeout=10) == 0
    assert "Traceback" not in stderr.read_text()


def test_without_an_sni_host_the_x11_icon_is_used_and_docks_at_24px(
    server: ControlServer, workdir: Path
) -> None:
    stderr = workdir / "tray.stderr"
    with (
        Xvfb() as x,
        SessionBus(x.env) as session,
        _start_tray(tray_env(session.env, workdir), server, stderr) as process,
    ):
        window = wait_until(
            lambda: x.find_windows(classname=ICON_CLASS, only_visible=False),
            timeout_s=20,
            what="the X11 icon's window",
        )[0]
        assert x.geometry(window)[2:] == (24, 24)  # the size KDE's xembedsniproxy shows
        wait_until(
            lambda: "this X11 session has no system tray" in stderr.read_text(),
            what="the no-tray-host warning",
        )
        with Trayer(x):
            wait_until(
                lambda: x.find_windows(classname=ICON_CLASS), timeout_s=10, what="it to dock"
            )
            process.terminate()
            assert process.wait(timeout=5) == 0
    assert "Traceback" not in stderr.read_text()


def _icon_position(x: Xvfb) -> tuple[int, int]:
    """The middle of the green icon in the panel."""
    image = x.screenshot().crop((0, 0, 800, PANEL_HEIGHT_PX))
    green = STATE_COLOURS[TrayState.RUNNING]
    points = [
        (px, py)
        for px in range(image.width)
        for py in range(image.height)
        if sum(abs(a - b) for a, b in zip(rgb(image.getpixel((px, py))), green, strict=True)) <= 30
    ]
    assert points, "no green icon in the panel"
    return (sum(p[0] for p in points) // len(points), sum(p[1] for p in points) // len(points))


def _right_click_shows_the_menu(x: Xvfb, save_as: Path) -> None:
    """The panel draws the exported menu on a right click (a real host reading it)."""
    below = (60, PANEL_HEIGHT_PX + 40)
    x.run("xdotool", "mousemove", "700", "500")  # no tooltip of the icon in the way
    wait_until(lambda: x.screenshot().getpixel(below) == DESKTOP_RGB, what="a clear desktop")
    before = x.screenshot().getpixel(below)
    px, py = _icon_position(x)
    x.run("xdotool", "mousemove", str(px), str(py), "click", "3")
    wait_until(lambda: x.screenshot().getpixel(below) != before, what="the panel's menu")
    time.sleep(0.3)  # let it finish drawing
    if SAVE_SCREENSHOTS:
        save_as.parent.mkdir(parents=True, exist_ok=True)
        x.screenshot().crop((0, 0, 380, 370)).save(save_as)
    x.run("xdotool", "key", "Escape")
    x.run("xdotool", "mousemove", "700", "500")
    wait_until(lambda: x.screenshot().getpixel(below) == before, what="the menu to close")


def _save_panel(x: Xvfb, path: Path) -> None:
    if not SAVE_SCREENSHOTS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    image = x.screenshot().crop((0, 0, 200, PANEL_HEIGHT_PX + 4))
    image.resize((image.width * 3, image.height * 3), Image.Resampling.LANCZOS).save(path)


# ------------------------------- unlock, new password, copy address, start at login, start hubd


def _click_path(tray: SniTray, *labels: str) -> None:
    """Click the item at LABELS (a path through submenus), as the panel reports a click."""
    from dbus_fast import Variant

    items = tray.menu()
    entry: dict[str, Any] = {}
    for label in labels:
        entry = next(item for item in items if item["label"].startswith(label))
        items = entry["children"]
    path = tray.prop("Menu")
    tray.host.call(
        tray.service, path, MENU, "Event", "isvu", [entry["id"], "clicked", Variant("s", ""), 0]
    )


def test_unlock_new_password_copy_and_start_at_login_from_the_panels_menu(
    x: Xvfb, bus: SessionBus, sni_tray: SniTray, daemon: FakeDaemon, tmp_path: Path
) -> None:
    # Users > alice > Unlock reaches the daemon.
    daemon.locked.add("alice")
    alice = sni_tray.item("Users")["children"][0]
    assert [(c["label"], c["enabled"]) for c in alice["children"]] == [
        ("Unlock", True),
        ("New password…", True),
    ]
    _click_path(sni_tray, "Users", "alice", "Unlock")
    wait_until(lambda: "unlock_user alice" in daemon.calls, what="the unlock")
    assert "alice" not in daemon.locked

    # Users > alice > New password… opens the window for her; it sets the password.
    _click_path(sni_tray, "Users", "alice", "New password…")
    window = wait_until(
        lambda: x.find_windows(name="New password for alice"), timeout_s=15, what="the window"
    )[0]
    x.screenshot().save(tmp_path / "tray-new-password.png")
    x.run("xdotool", "windowfocus", "--sync", str(window))
    x.run("xdotool", "type", "--delay", "2", "granite-lantern-fox")
    x.run("xdotool", "key", "Tab")
    x.run("xdotool", "type", "--delay", "2", "granite-lantern-fox")
    x.run("xdotool", "key", "Return")
    wait_until(lambda: "set_password alice" in daemon.calls, what="the new password")
    wait_until(lambda: not x.find_windows(name="New password for alice"), what="it to close")

    # Copy address: the hub's address on the clipboard (xclip here).
    _click_path(sni_tray, "Copy address")
    wait_until(
        lambda: x.run("xclip", "-o", "-selection", "clipboard", check=False) == URL,
        what="the address on the clipboard",
    )

    # Start at login: this user's autostart entry, written and removed; the check follows.
    entry = bus.config_home / "autostart" / "hubd-tray.desktop"
    assert not entry.exists() and not sni_tray.item("Start at login")["checked"]
    _click_path(sni_tray, "Start at login")
    wait_until(entry.exists, what="the autostart entry")
    wait_until(lambda: sni_tray.item("Start at login")["checked"], what="the check mark")
    assert "tray" in entry.read_text() and "Hidden=true" not in entry.read_text()
    subprocess.run(["desktop-file-validate", str(entry)], check=True)
    _click_path(sni_tray, "Start at login")
    wait_until(lambda: not entry.exists(), what="the entry removed")
    wait_until(lambda: not sni_tray.item("Start at login")["checked"], what="no check mark")


def test_start_hubd_through_the_installed_user_service(
    bus: SessionBus,
    panel: XfcePanel,
    host: BusClient,
    server: ControlServer,
    daemon: FakeDaemon,
    workdir: Path,
) -> None:
    # `hubd service install --user` left its unit; systemctl is a recorder here (no user
    # manager in this session): the tray must ask it to start hubd.service, in user mode.
    unit = bus.config_home / "systemd" / "user" / "hubd.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    calls = workdir / "systemctl.calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    server.close()  # hubd is not running
    env = {**tray_env(bus.env, workdir), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    stderr = workdir / "tray.stderr"
    try:
        with _start_tray(env, server, stderr) as process:
            tray = SniTray(process, host, stderr)
            wait_until(tray.find_item, timeout_s=20, what="the tray's item at the watcher")
            assert tray.item("Start hubd")["enabled"]
            assert tray.item("How to start hubd")["enabled"]  # still there to read
            _click_path(tray, "Start hubd")
            wait_until(calls.exists, what="systemctl to be run")
            assert "--user start --no-block hubd.service" in calls.read_text().splitlines()
            _finish(tray)
    finally:
        shutil.rmtree(bus.config_home / "systemd", ignore_errors=True)
