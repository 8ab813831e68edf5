"""The pure parts of the StatusNotifierItem backend and of the tray's never-silent hints.

The D-Bus side itself is tested against a real bus and panel in
tests/integration/test_tray_sni.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from hubd._tray.backends import load_pystray, wants_sni
from hubd._tray.backends.dbusmenu import ROOT_ID, DBusMenu, MenuEntry, flatten
from hubd._tray.backends.hosthint import no_tray_host_advice, no_tray_host_warning
from hubd._tray.backends.sni import PIXMAP_SIZES_PX, argb_pixmaps
from hubd._tray.menu import NEEDS_TK, Action, ItemSpec, build_menu, to_pystray, without_windows
from hubd._tray.state import Snapshot, UserRow
from hubd.status import Status
from hubd.timing import Timing

URL = "http://jupyter.local:8000/"


def snap(state: str = "running", log_file_readable: bool = False) -> Snapshot:
    return Snapshot(
        status=Status.from_json({"state": state, "desired": "running", "url": URL}),
        users=(UserRow("alice", True, True),),
        log_file_readable=log_file_readable,
    )


@pytest.fixture(scope="module")
def pystray() -> Any:
    return load_pystray(sni=True)  # what the SNI backend loads: pystray's classes, no display


def exported(pystray: Any, specs: list[ItemSpec], clicked: list[str]) -> dict[int, MenuEntry]:
    menu = to_pystray(pystray, lambda: specs, clicked.append)
    return flatten(menu, pystray.Menu.SEPARATOR, lambda item: item(None))


# ---------------------------------------------------------------- the picture


def test_pixmaps_are_argb32_in_network_order_at_every_size() -> None:
    image = Image.new("RGBA", (64, 64), (10, 20, 30, 255))
    pixmaps = argb_pixmaps(image)
    assert [(w, h) for w, h, _ in pixmaps] == [(s, s) for s in PIXMAP_SIZES_PX]
    for width, height, data in pixmaps:
        assert len(data) == width * height * 4
        assert data[:4] == bytes([255, 10, 20, 30])  # alpha first, then red, green, blue


# ---------------------------------------------------------------- the menu over D-Bus


def test_the_exported_menu_has_the_tray_menus_items_states_and_separators(pystray: Any) -> None:
    clicked: list[str] = []
    specs = build_menu(snap())
    entries = exported(pystray, specs, clicked)
    top = [entries[i] for i in entries[ROOT_ID].children]
    assert len(top) == len(specs)
    kinds = [e.props["type"].value if "type" in e.props else "standard" for e in top]
    assert kinds.count("separator") == sum(spec.is_separator for spec in specs)
    by_label = {e.props["label"].value: e for e in top if "label" in e.props}
    assert by_label["Start"].props["enabled"].value is False
    assert by_label["Stop"].props["enabled"].value is True
    assert by_label["Start"].on_click is None  # disabled: a click does nothing
    users = next(e for label, e in by_label.items() if label.startswith("Users"))
    assert users.props["children-display"].value == "submenu"
    (alice,) = (entries[i] for i in users.children)
    assert alice.props["toggle-type"].value == "checkmark"
    assert alice.props["toggle-state"].value == 1

    stop = by_label["Stop"].on_click
    assert stop is not None
    stop()
    assert clicked == [Action.STOP]


class RecordingMenu(DBusMenu):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any]] = []

    def ItemsPropertiesUpdated(self, updated: Any, removed: Any) -> Any:
        self.sent.append(("ItemsPropertiesUpdated", [i for i, _ in updated]))

    def LayoutUpdated(self, revision: int, parent: int) -> Any:
        self.sent.append(("LayoutUpdated", revision))


def test_hosts_are_told_what_changed_properties_or_layout(pystray: Any) -> None:
    face = RecordingMenu()
    running = exported(pystray, build_menu(snap("running")), [])
    face.replace(running)
    assert face.sent == [("LayoutUpdated", 2)]  # the first menu: a new layout

    face.sent.clear()
    face.replace(exported(pystray, build_menu(snap("running")), []))
    assert face.sent == []  # nothing changed: nothing said

    stopped_specs = build_menu(
        Snapshot(
            status=Status.from_json({"state": "stopped", "desired": "stopped", "url": URL}),
            users=(UserRow("alice", True, True),),
        )
    )
    face.replace(exported(pystray, stopped_specs, []))
    ((signal, changed),) = face.sent
    assert signal == "ItemsPropertiesUpdated" and changed  # same shape, other states

    face.sent.clear()
    face.replace(exported(pystray, build_menu(Snapshot(error="hubd is not running")), []))
    assert face.sent == [("LayoutUpdated", 3)]  # other items: a new layout
    root_id, props, children = face.layout(ROOT_ID)
    assert root_id == ROOT_ID and props["children-display"].value == "submenu"
    assert [child.signature for child in children] == ["(ia{sv}av)"] * len(children)


# ---------------------------------------------------------------- without tkinter


def test_without_tk_the_items_that_open_windows_are_greyed_and_say_why() -> None:
    specs = without_windows(build_menu(snap()), log_file_readable=False)
    by_action = {spec.action: spec for spec in specs if spec.action}
    for action in (Action.ADDRESS, Action.ADD_USER, Action.LOGS):
        assert not by_action[action].enabled and by_action[action].label.endswith(NEEDS_TK)
    assert by_action[Action.OPEN].enabled and by_action[Action.QUIT].enabled

    readable = without_windows(build_menu(snap(log_file_readable=True)), log_file_readable=True)
    logs = next(spec for spec in readable if spec.action == Action.LOGS)
    assert logs.enabled  # the desktop's own application opens the log file

    away = without_windows(build_menu(Snapshot(error="gone")), log_file_readable=False)
    how = next(spec for spec in away if spec.action == Action.HOW_TO_START)
    assert not how.enabled and not how.default


# ---------------------------------------------------------------- no tray host


@pytest.mark.parametrize(
    ("environ", "advice"),
    [
        ({"XDG_CURRENT_DESKTOP": "ubuntu:GNOME"}, "gnome-shell-extension-appindicator"),
        ({"XDG_CURRENT_DESKTOP": "XFCE"}, "Status Tray Plugin"),
        ({"XDG_CURRENT_DESKTOP": "KDE"}, "System Tray widget"),
        ({"DISPLAY": ":0"}, "this X11 session has no system tray"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "run a system tray"),
    ],
)
def test_the_no_tray_host_warning_says_what_to_do_on_this_desktop(
    environ: dict[str, str], advice: str
) -> None:
    assert advice in no_tray_host_advice(environ)
    assert no_tray_host_warning(5.0, environ).startswith("the tray icon is not shown")


@pytest.mark.parametrize(
    ("environ", "sni"),
    [
        ({"PYSTRAY_BACKEND": "xorg"}, False),
        ({"PYSTRAY_BACKEND": "sni"}, True),
        ({"XDG_CURRENT_DESKTOP": "GNOME"}, True),  # before the extension is up
        ({"XDG_CURRENT_DESKTOP": "XFCE", "DISPLAY": ":0"}, False),  # no host: XEmbed
        ({"WAYLAND_DISPLAY": "wayland-0"}, True),
    ],
)
def test_the_backend_is_chosen_from_the_session(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], sni: bool
) -> None:
    for name in ("PYSTRAY_BACKEND", "XDG_CURRENT_DESKTOP", "WAYLAND_DISPLAY", "DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    # A bus where nobody answers: no StatusNotifierItem host is there.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/hubd-test-bus")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert wants_sni(timing=Timing()) is sni
