"""The tray's menu and actions, through pystray's own Menu/MenuItem against a real control API.

The icon is pystray's base Icon with no-op drawing and an Event-driven run (pystray's dummy
backend cannot run); the daemon is a real `ControlServer` on a temporary socket in front of
a small fake of the daemon's state. Helper windows are recorded, not opened (they are tested
under Xvfb in tests/integration/test_tray_xvfb.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubd._tray.icons import draw_icon
from hubd._tray.state import TrayState
from hubd.control import ControlServer
from hubd.errors import DockerUnavailable
from hubd.timing import Timing
from hubd.tray import TrayApp, TrayPlace, how_to_start_text
from tests.tray_fakes import URL, FakeDaemon, FakeDesktop, serving, short_temp_dir

# ---------------------------------------------------------------- fakes


class RecordingLauncher:
    def __init__(self) -> None:
        self.windows: list[tuple[str, str, list[str], str | None, Any]] = []
        self.closed = False

    def window(
        self,
        kind: str,
        module: str,
        args: Any = (),
        stdin_text: str | None = None,
        on_exit: Callable[[int, str], None] | None = None,
    ) -> None:
        self.windows.append((kind, module, list(args), stdin_text, on_exit))

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def pystray() -> Any:
    # pystray picks its backend when first imported, and without a display the default
    # (xorg) import fails: choose the dummy backend for that import only.
    if "pystray" not in sys.modules:
        saved = os.environ.get("PYSTRAY_BACKEND")
        os.environ["PYSTRAY_BACKEND"] = "dummy"
        try:
            import pystray as module
        finally:
            if saved is None:
                del os.environ["PYSTRAY_BACKEND"]
            else:
                os.environ["PYSTRAY_BACKEND"] = saved
    import pystray as module

    return module


@pytest.fixture(scope="module")
def fake_icon_class(pystray: Any) -> Any:
    from pystray._base import Icon

    class FakeIcon(Icon):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.notices: list[tuple[str | None, str]] = []
            self.menu_updates = 0
            self._stopped = threading.Event()

        def _show(self) -> None: ...
        def _hide(self) -> None: ...
        def _update_icon(self) -> None: ...
        def _update_title(self) -> None: ...

        def _update_menu(self) -> None:
            self.menu_updates += 1

        def _notify(self, message: str, title: str | None = None) -> None:
            self.notices.append((title, message))

        def _remove_notification(self) -> None: ...

        def _run(self) -> None:
            self._mark_ready()
            self._stopped.wait()

        def _stop(self) -> None:
            self._stopped.set()

    return FakeIcon


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_temp_dir("hubd-tray-") as path:
        yield path


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def server(daemon: FakeDaemon, socket_dir: Path) -> Iterator[ControlServer]:
    with serving(daemon, socket_dir / "control.sock") as srv:
        yield srv


class Harness:
    def __init__(
        self,
        app: TrayApp,
        thread: threading.Thread,
        opened: list[str],
        launcher: RecordingLauncher,
        opened_paths: list[Path],
    ) -> None:
        self.app, self.thread, self.opened = app, thread, opened
        self.launcher, self.opened_paths = launcher, opened_paths

    @property
    def icon(self) -> Any:
        return self.app.icon

    def menu(self) -> list[tuple[str, bool, bool | None]]:
        """The live pystray menu, flattened: (label, enabled, checked), submenus indented."""
        rows: list[tuple[str, bool, bool | None]] = []

        def walk(menu: Any, indent: str) -> None:
            for item in menu:
                rows.append((indent + item.text, item.enabled, item.checked))
                if item.submenu is not None:
                    walk(item.submenu, indent + "  ")

        walk(self.icon.menu, "")
        return rows

    def labels_enabled(self) -> dict[str, bool]:
        """The top-level items (no separators, no submenu rows): label -> enabled."""
        return {
            label: enabled
            for label, enabled, _checked in self.menu()
            if label != SEP and not label.startswith(" ")
        }

    def click(self, label: str, *path: str) -> None:
        """Click LABEL, or the item at LABEL > PATH... in submenus."""
        menu = self.icon.menu
        for step, name in enumerate((label, *path)):
            item = next((i for i in menu if i.text == name), None)
            if item is None:
                raise AssertionError(f"no menu item {name!r}")
            if step == len(path):
                item(self.icon)
                return
            menu = item.submenu

    def wait(self, predicate: Callable[[], Any], what: str, timeout_s: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)
        return value


@pytest.fixture
def desktop() -> FakeDesktop:
    return FakeDesktop()


@pytest.fixture
def tray(
    server: ControlServer,
    fake_icon_class: Any,
    pystray: Any,
    socket_dir: Path,
    desktop: FakeDesktop,
) -> Iterator[Harness]:
    opened: list[str] = []
    opened_paths: list[Path] = []
    launcher = RecordingLauncher()

    def open_path(path: Path) -> bool:
        opened_paths.append(path)
        return True

    app = TrayApp(
        lambda: TrayPlace(server.path, socket_dir / "hubd.log"),
        pystray,
        fake_icon_class,
        open_url=opened.append,
        open_path=open_path,
        launcher=launcher,  # type: ignore[arg-type]
        notify_fallback=lambda t, m: None,
        timing=Timing(tray_poll_interval_s=0.05),
        desktop=desktop,
    )
    thread = threading.Thread(target=app.run, name="test-tray", daemon=True)
    thread.start()
    harness = Harness(app, thread, opened, launcher, opened_paths)
    harness.wait(lambda: app.icon.visible, "the icon to show")
    try:
        yield harness
    finally:
        app.quit()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the tray did not stop"


# ---------------------------------------------------------------- the menu in each state

SEP = "- - - -"

# label -> enabled, for every state the daemon reports (and the daemon being away).
EXPECTED_MENUS: dict[str, dict[str, bool]] = {
    "running": {
        "JupyterHub is running": False,
        "Open JupyterHub": True,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": False,
        "Stop": True,
        "Restart": True,
        "Add user…": True,
        "Users (2)": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
    "starting": {
        "JupyterHub is starting": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": False,
        "Stop": True,
        "Restart": False,
        "Add user…": False,
        "Users": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
    "restarting": {
        "JupyterHub is restarting": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": False,
        "Stop": True,
        "Restart": False,
        "Add user…": False,
        "Users": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
    "failing": {
        "JupyterHub keeps crashing": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": False,
        "Stop": True,
        "Restart": True,
        "Add user…": False,
        "Users": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
    "stopped": {
        "JupyterHub is stopped": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": True,
        "Stop": False,
        "Restart": False,
        "Add user…": False,
        "Users": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
    "docker-unavailable": {
        "Docker is not running": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": True,
        f"Copy address: {URL}": True,
        "Start": False,
        "Stop": True,
        "Restart": False,
        "Add user…": False,
        "Users": True,
        "Last backup: 3 h ago": False,
        "Back up now": True,
        "Open logs": True,
        "Start at login": True,
        "Quit tray": True,
    },
}

EXPECTED_LOOKS = {
    "running": TrayState.RUNNING,
    "starting": TrayState.STARTING,
    "restarting": TrayState.STARTING,
    "failing": TrayState.FAILING,
    "stopped": TrayState.STOPPED,
    "docker-unavailable": TrayState.FAILING,
}


@pytest.mark.parametrize("state", sorted(EXPECTED_MENUS))
def test_menu_labels_and_enabled_follow_the_daemon(
    tray: Harness, daemon: FakeDaemon, state: str
) -> None:
    daemon.state = state
    daemon.desired = "stopped" if state == "stopped" else "running"
    tray.app.refresh()
    assert tray.labels_enabled() == EXPECTED_MENUS[state]
    assert tray.icon.icon.tobytes() == draw_icon(EXPECTED_LOOKS[state]).tobytes()
    headline = next(iter(EXPECTED_MENUS[state]))
    assert tray.icon.title == f"{headline} - {URL}"


def test_the_menu_is_ordered_and_separated(tray: Harness) -> None:
    assert [label for label, _e, _c in tray.menu() if not label.startswith("  ")] == [
        "JupyterHub is running",
        SEP,
        "Open JupyterHub",
        "Show address for phones and tablets",
        f"Copy address: {URL}",
        SEP,
        "Start",
        "Stop",
        "Restart",
        SEP,
        "Add user…",
        "Users (2)",
        SEP,
        "Last backup: 3 h ago",
        "Back up now",
        SEP,
        "Open logs",
        SEP,
        "Start at login",
        "Quit tray",
    ]


def test_users_submenu_shows_who_exists_and_whose_server_runs(
    tray: Harness, daemon: FakeDaemon
) -> None:
    rows = [row for row in tray.menu() if row[0].startswith("  ")]
    assert rows == [
        ("  alice (admin) — server running", True, True),
        ("    Unlock", True, None),
        ("    New password…", True, None),
        ("  bob", True, False),
        ("    Unlock", True, None),
        ("    New password…", True, None),
    ]
    daemon.users["bob"]["server_running"] = True
    tray.app.refresh()
    assert ("  bob — server running", True, True) in tray.menu()
    daemon.state = "stopped"
    tray.app.refresh()
    assert [row for row in tray.menu() if row[0].startswith("  ")] == [
        ("  (not available while the hub is down)", False, None)
    ]


def test_when_the_daemon_is_away_only_how_to_start_and_quit_work(
    tray: Harness, server: ControlServer, daemon: FakeDaemon
) -> None:
    server.close()
    tray.app.refresh()
    assert tray.labels_enabled() == {
        "hubd is not running": False,
        "Open JupyterHub": False,
        "Show address for phones and tablets": False,
        "Start": False,
        "Stop": False,
        "Restart": False,
        "Add user…": False,
        "Users": False,
        "Backups not set up": False,
        "Back up now": False,
        "Open logs": False,
        "How to start hubd…": True,
        "Start at login": True,
        "Quit tray": True,
    }
    assert tray.icon.title == "hubd is not running"
    assert tray.icon.icon.tobytes() == draw_icon(TrayState.UNREACHABLE).tobytes()
    assert tray.icon.notices[-1][0] == "hubd stopped"

    # A click on a host without menus shows how to start hubd, with the reason.
    tray.icon()
    kind, module, args, _stdin, _on_exit = tray.wait(lambda: tray.launcher.windows, "a window")[-1]
    assert (kind, module) == ("how-to-start", "hubd._tray.windows.text")
    text = args[args.index("--text") + 1]
    assert "hubd service install" in text and "hubd run" in text
    assert str(server.path) in text  # the reason names the socket it looked for

    # The daemon comes back: the tray notices on its own (it polls every 0.05 s here).
    again = ControlServer(server.path, daemon, timing=Timing())
    again.start()
    try:
        tray.wait(lambda: tray.icon.title.startswith("JupyterHub is running"), "recovery")
        assert tray.labels_enabled()["Open JupyterHub"] is True
    finally:
        again.close()


def test_open_logs_reads_the_log_file_when_the_daemon_is_away(
    tray: Harness, server: ControlServer, socket_dir: Path
) -> None:
    (socket_dir / "hubd.log").write_text("hub started\n")
    server.close()
    tray.app.refresh()
    assert tray.labels_enabled()["Open logs"] is True
    tray.click("Open logs")
    tray.wait(lambda: tray.opened_paths, "the log file to open")
    assert tray.opened_paths == [socket_dir / "hubd.log"]


# ---------------------------------------------------------------- actions


def test_open_is_the_default_action_and_opens_the_advertised_address(tray: Harness) -> None:
    tray.icon()  # what a click on the icon does on hosts without menus
    tray.wait(lambda: tray.opened, "the browser")
    tray.click("Open JupyterHub")
    tray.wait(lambda: len(tray.opened) == 2, "the browser again")
    assert tray.opened == [URL, URL]


def test_stop_start_restart_call_the_daemon_and_the_menu_follows(
    tray: Harness, daemon: FakeDaemon
) -> None:
    # One delivery sets the menu, then the title: wait for the title too.
    tray.click("Stop")
    tray.wait(
        lambda: (
            tray.labels_enabled().get("Start")
            and tray.icon.title.startswith("JupyterHub is stopped")
        ),
        "Start to be enabled",
    )
    assert daemon.calls == ["stop"]
    assert tray.labels_enabled()["Stop"] is False
    assert tray.icon.title.startswith("JupyterHub is stopped")

    tray.click("Start")
    tray.wait(
        lambda: (
            tray.labels_enabled().get("Stop")
            and tray.icon.title.startswith("JupyterHub is starting")
        ),
        "Stop to be enabled",
    )
    assert daemon.calls == ["stop", "start"]
    assert tray.icon.title.startswith("JupyterHub is starting")

    daemon.state = "running"
    tray.app.refresh()
    tray.click("Restart")
    tray.wait(lambda: daemon.calls[-1:] == ["restart"], "the restart")
    tray.wait(lambda: tray.icon.title.startswith("JupyterHub is restarting"), "restarting")
    daemon.state = "running"
    tray.app.refresh()
    # A restart asked for from the tray is not announced as a crash.
    assert tray.icon.notices == []


def test_a_disabled_item_does_nothing_even_if_clicked(tray: Harness, daemon: FakeDaemon) -> None:
    tray.click("Start")  # the hub already runs
    tray.click("Open logs")  # a later action: once it ran, Start was handled
    tray.wait(lambda: tray.launcher.windows, "the logs window")
    assert daemon.calls == []


def test_show_address_opens_the_window_with_the_url_and_ip_fallback(tray: Harness) -> None:
    tray.click("Show address for phones and tablets")
    kind, module, args, _stdin, _on_exit = tray.wait(lambda: tray.launcher.windows, "a window")[0]
    assert (kind, module) == ("address", "hubd._tray.windows.address")
    assert args == ["--url", URL, "--alt", "http://192.0.2.5:8000/"]


def test_add_user_opens_the_dialog_and_announces_the_new_user(
    tray: Harness, server: ControlServer
) -> None:
    tray.click("Add user…")
    kind, module, args, _stdin, on_exit = tray.wait(lambda: tray.launcher.windows, "a window")[0]
    assert (kind, module, args) == (
        "add-user",
        "hubd._tray.windows.dialog",
        ["--socket", str(server.path)],
    )
    on_exit(1, "")  # cancelled: nothing to say
    assert tray.icon.notices == []
    on_exit(0, "carol\n")
    assert tray.icon.notices == [("User added", f"carol can now log in at {URL}")]


def test_open_logs_asks_the_daemon_when_there_is_no_log_file(
    tray: Harness, server: ControlServer
) -> None:
    tray.click("Open logs")
    kind, module, args, _stdin, _on_exit = tray.wait(lambda: tray.launcher.windows, "a window")[0]
    assert (kind, module) == ("logs", "hubd._tray.windows.text")
    assert args[-2:] == ["--logs-socket", str(server.path)]


def test_a_refused_action_becomes_a_notification(
    tray: Harness, daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise DockerUnavailable("Docker is not running: start Docker Desktop")

    monkeypatch.setattr(daemon, "stop", broken)
    tray.click("Stop")
    tray.wait(lambda: tray.icon.notices, "a notification")
    assert tray.icon.notices == [
        ("Could not stop JupyterHub", "Docker is not running: start Docker Desktop")
    ]


def test_quit_removes_the_icon_but_leaves_the_hub_alone(tray: Harness, daemon: FakeDaemon) -> None:
    tray.click("Quit tray")
    tray.thread.join(timeout=10)
    assert not tray.thread.is_alive()
    assert tray.launcher.closed
    assert daemon.calls == []


def test_the_poller_follows_the_daemon_without_clicks(tray: Harness, daemon: FakeDaemon) -> None:
    updates = tray.icon.menu_updates
    daemon.state = "failing"
    daemon.last_error = "hub exited with code 1"
    tray.wait(lambda: tray.icon.title.startswith("JupyterHub keeps crashing"), "failing")
    assert tray.icon.menu_updates > updates
    assert tray.icon.notices == [
        (
            "JupyterHub keeps crashing",
            "hub exited with code 1 hubd keeps trying; open the logs to see why.",
        )
    ]


def test_an_update_is_announced_and_the_menu_item_upgrades(
    tray: Harness, daemon: FakeDaemon
) -> None:
    item = "Update available: upgrade now…"
    assert item not in tray.labels_enabled()
    daemon.update = {"available": True, "changes": ["hub image: jupyterhub|5.4.6|6.1.1"]}
    tray.app.refresh()
    assert tray.labels_enabled()[item] is True
    tray.click(item)
    tray.wait(lambda: item not in tray.labels_enabled(), "the item to go")
    # The images the daemon's check fetched are used: no second pull.
    assert daemon.calls == ["upgrade_plan pull=False", "upgrade_apply"]
    titles = [title for title, _message in tray.icon.notices]
    assert titles == ["Update available", "Upgrading JupyterHub", "JupyterHub upgraded"]


def test_crash_and_recovery_are_announced(tray: Harness, daemon: FakeDaemon) -> None:
    daemon.state, daemon.restart_count = "restarting", 1
    tray.app.refresh()
    daemon.state = "running"
    tray.app.refresh()
    assert [title for title, _message in tray.icon.notices] == [
        "JupyterHub crashed",
        "JupyterHub is back",
    ]


def test_popup_menu_choice_runs_the_action(tray: Harness) -> None:
    tray.app.show_popup_menu()
    kind, module, _args, stdin, on_exit = tray.launcher.windows[0]
    assert (kind, module) == ("popup", "hubd._tray.windows.popup")
    assert '"label": "Open JupyterHub"' in (stdin or "")
    on_exit(0, "open\n")
    tray.wait(lambda: tray.opened, "the browser")
    assert tray.opened == [URL]


def test_how_to_start_text_names_both_ways() -> None:
    text = how_to_start_text("no control socket at /run/x.sock")
    assert "hubd service install" in text
    assert "hubd run" in text
    assert text.endswith("Details: no control socket at /run/x.sock")


def test_back_up_now_runs_a_backup_and_says_when_it_is_done(
    tray: Harness, daemon: FakeDaemon
) -> None:
    tray.click("Back up now")
    tray.wait(lambda: tray.icon.notices, "a notification")
    assert daemon.calls == ["backup"]
    assert tray.icon.notices == [("Backup done", "Saved to /media/usb/hub-backup.")]
    tray.wait(lambda: "Last backup: 0 min ago" in tray.labels_enabled(), "the new age")


def test_a_failed_backup_is_told_once_and_an_overdue_one_too(
    tray: Harness, daemon: FakeDaemon
) -> None:
    daemon.backup_error = "backup target /media/usb/hub-backup does not exist"
    tray.click("Back up now")
    tray.wait(lambda: tray.icon.notices, "a notification")
    tray.app.refresh()
    tray.app.refresh()
    assert tray.icon.notices == [("Backup failed", f"{daemon.backup_error}. hubd will try again.")]
    assert "Last backup FAILED" in tray.labels_enabled()
    daemon.backup_status = {**daemon.backup_status, "overdue": True, "age_s": 50 * 3600}
    tray.app.refresh()
    tray.app.refresh()
    assert tray.icon.notices[1:] == [
        (
            "No recent backup",
            "The last good backup is 50 hours old. Check the backup disk, then use Back up now.",
        )
    ]


# ------------------------------- unlock, new password, copy address, start at login, start hubd


def test_unlock_from_the_users_menu_reaches_the_daemon_and_says_how_it_went(
    tray: Harness, daemon: FakeDaemon
) -> None:
    daemon.locked.add("bob")
    tray.click("Users (2)", "bob", "Unlock")
    tray.wait(lambda: "unlock_user bob" in daemon.calls, "the unlock")
    tray.wait(lambda: tray.icon.notices, "a notice")
    assert tray.icon.notices[-1] == ("bob is unlocked", "bob can sign in again now.")
    tray.click("Users (2)", "bob", "Unlock")
    tray.wait(lambda: len(tray.icon.notices) == 2, "a second notice")
    assert tray.icon.notices[-1][0] == "bob was not locked"


def test_new_password_opens_the_password_window_for_that_person(
    tray: Harness, server: ControlServer
) -> None:
    tray.click("Users (2)", "alice (admin) — server running", "New password…")
    kind, module, args, _stdin, on_exit = tray.wait(lambda: tray.launcher.windows, "a window")[-1]
    assert (kind, module) == ("password", "hubd._tray.windows.dialog")
    assert args == ["--socket", str(server.path), "--password-for", "alice"]
    on_exit(0, "alice\n")  # the window set it
    assert tray.icon.notices[-1][0] == "Password changed"


def test_copy_address_puts_the_hub_address_on_the_clipboard(
    tray: Harness, desktop: FakeDesktop
) -> None:
    tray.click(f"Copy address: {URL}")
    tray.wait(lambda: desktop.copied, "the copy")
    assert desktop.copied == [URL]
    tray.wait(lambda: tray.icon.notices, "a notice")
    assert tray.icon.notices[-1][0] == "Address copied"


def test_start_at_login_flips_and_the_check_mark_follows(
    tray: Harness, desktop: FakeDesktop
) -> None:
    def checked() -> bool | None:
        return next(c for label, _e, c in tray.menu() if label == "Start at login")

    assert checked() is False
    tray.click("Start at login")
    tray.wait(lambda: checked() is True, "the check mark")
    tray.click("Start at login")
    tray.wait(lambda: checked() is False, "the check mark gone")
    assert desktop.calls == ["start_at_login True", "start_at_login False"]


def test_start_hubd_through_the_service_when_the_daemon_is_away(
    tray: Harness, server: ControlServer, desktop: FakeDesktop
) -> None:
    desktop.service_installed = True
    server.close()
    tray.app.refresh()
    labels = tray.labels_enabled()
    assert labels["Start hubd"] is True and labels["How to start hubd…"] is True
    tray.icon()  # a click on the icon (hosts without menus): the default, Start hubd
    tray.wait(lambda: desktop.calls == ["start_daemon"], "the start")
    tray.wait(lambda: tray.icon.notices[-1][0] == "Starting hubd", "the notice")
