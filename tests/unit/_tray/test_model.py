"""The tray's pure parts: state words, icon pictures, menu specs, notifications, helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubd._tray.icons import ICON_SIZE_PX, STATE_COLOURS, draw_icon
from hubd._tray.menu import (
    SEPARATOR,
    Action,
    DesktopFacts,
    ItemSpec,
    build_menu,
    default_action,
    find_item,
    split_action,
    user_action,
    without_windows,
)
from hubd._tray.notices import NoticeTracker
from hubd._tray.state import TOOLTIP_MAX_CHARS, Snapshot, TrayState, UserRow, tooltip
from hubd._tray.windows.address import qr_png
from hubd._tray.windows.dialog import check_locally
from hubd._tray.windows.text import tail_of_file
from hubd.config import MIN_PASSWORD_CHARS
from hubd.status import Status
from hubd.timing import Timing
from tests.pixels import rgb

URL = "http://jupyter.local:8000/"


def snap(state: str | None = "running", **status: Any) -> Snapshot:
    if state is None:
        return Snapshot(error="hubd is not running (no control socket at /x)")
    return Snapshot(
        status=Status.from_json({"state": state, "url": URL, **status}),
        users=(UserRow("alice", True, True),),
    )


# ---------------------------------------------------------------- state


@pytest.mark.parametrize(
    ("state", "look"),
    [
        ("running", TrayState.RUNNING),
        ("starting", TrayState.STARTING),
        ("restarting", TrayState.STARTING),
        ("failing", TrayState.FAILING),
        ("docker-unavailable", TrayState.FAILING),
        ("stopped", TrayState.STOPPED),
        ("something-new", TrayState.STARTING),
        (None, TrayState.UNREACHABLE),
    ],
)
def test_each_daemon_state_has_a_look(state: str | None, look: TrayState) -> None:
    assert snap(state).look is look


def test_tooltip_names_the_state_and_the_url() -> None:
    assert tooltip(snap("running")) == f"JupyterHub is running - {URL}"
    assert tooltip(snap("docker-unavailable")) == f"Docker is not running - {URL}"
    assert tooltip(snap("something-new")) == f"JupyterHub: something-new - {URL}"
    assert tooltip(snap(None)) == "hubd is not running"


def test_tooltip_is_short_and_latin1_safe() -> None:
    long = Snapshot(
        status=Status.from_json({"state": "running", "url": "http://" + "x" * 200 + "/"})
    )
    text = tooltip(long)
    assert len(text) == TOOLTIP_MAX_CHARS and text.endswith("...")
    text.encode("latin-1")  # pystray's xorg backend stores it as a Latin-1 window name


def test_a_daemon_without_url_falls_back_to_the_local_url_and_tolerates_junk() -> None:
    assert (
        Snapshot(
            status=Status.from_json({"state": "running", "local_url": "http://localhost:8000/"})
        ).hub_url
        == "http://localhost:8000/"
    )
    odd = Snapshot(
        status=Status.from_json({"state": 3, "url": None, "restart_count": True, "mdns": "x"})
    )
    assert odd.raw_state == "unknown" and odd.hub_url is None
    assert odd.restart_count is None and odd.address_urls == []
    assert tooltip(odd) == "JupyterHub: unknown"


def test_address_urls_put_each_advertised_ip_in_place_of_the_name() -> None:
    s = snap("running", mdns={"addresses": ["192.0.2.5", "fe80::1", 7]})
    assert s.address_urls == ["http://192.0.2.5:8000/", "http://[fe80::1]:8000/"]


def test_wanted_follows_desired_else_the_state() -> None:
    assert snap("failing", desired="stopped").wanted is False
    assert snap("stopped", desired="running").wanted is True
    assert snap("starting").wanted is True and snap("stopped").wanted is False


# ---------------------------------------------------------------- icons


def test_each_state_has_its_own_picture_in_its_colour() -> None:
    pictures = {state: draw_icon(state) for state in TrayState}
    assert len({p.tobytes() for p in pictures.values()}) == len(TrayState)
    for state, picture in pictures.items():
        assert picture.size == (ICON_SIZE_PX, ICON_SIZE_PX) and picture.mode == "RGBA"
        # Left of the glyph, inside the disc (or on the grey ring): the state's colour.
        r, g, b, a = rgb(picture.getpixel((8, 32) if state is TrayState.UNREACHABLE else (14, 32)))
        assert a == 255
        assert max(abs(x - y) for x, y in zip((r, g, b), STATE_COLOURS[state], strict=True)) <= 3
    # The "not running" icon is hollow: quiet next to live icons.
    assert rgb(pictures[TrayState.UNREACHABLE].getpixel((22, 32)))[3] == 0
    assert draw_icon(TrayState.RUNNING, 22).size == (22, 22)


# ---------------------------------------------------------------- menu specs


def test_menu_default_action_is_open_when_running_and_how_to_start_when_away() -> None:
    assert default_action(build_menu(snap("running"))) == Action.OPEN
    assert default_action(build_menu(snap("stopped"))) is None  # Open is off: the tray pops up
    assert default_action(build_menu(snap(None))) == Action.HOW_TO_START


def test_menu_specs_round_trip_through_json_for_the_popup() -> None:
    specs = build_menu(snap("running"))
    again = [
        ItemSpec.from_json(item)
        for item in json.loads(json.dumps([spec.to_json() for spec in specs]))
    ]
    assert again == specs
    assert find_item(specs, Action.QUIT) == ItemSpec("Quit tray", Action.QUIT)
    assert SEPARATOR.is_separator and not ItemSpec("Start", Action.START).is_separator


def test_users_item_when_there_are_none() -> None:
    empty = Snapshot(status=Status.from_json({"state": "running"}), users=())
    users = next(s for s in build_menu(empty) if s.label.startswith("Users"))
    assert [c.label for c in users.children] == ["(no users yet)"]


def test_each_person_can_be_unlocked_or_given_a_new_password_while_the_hub_runs() -> None:
    users = next(s for s in build_menu(snap("running")) if s.label.startswith("Users"))
    (alice,) = users.children
    assert alice.checked is True  # her server runs
    assert [(c.label, c.action, c.enabled) for c in alice.children] == [
        ("Unlock", "unlock:alice", True),
        ("New password…", "password:alice", True),
    ]
    assert split_action(user_action(Action.UNLOCK, "alice")) == (Action.UNLOCK, "alice")
    assert split_action(Action.QUIT) == (Action.QUIT, None)
    # Accounts live in the running hub: greyed while it starts or crashes.
    failing = next(s for s in build_menu(snap("failing")) if s.label.startswith("Users"))
    assert not any(c.enabled for c in failing.children[0].children)
    # The new password needs a window: greyed under a Python without Tk; Unlock does not.
    greyed = without_windows(build_menu(snap("running")), log_file_readable=True)
    assert find_item(greyed, "password:alice") == ItemSpec(
        "New password… (needs Tk)", "password:alice", enabled=False
    )
    assert find_item(greyed, "unlock:alice") == ItemSpec("Unlock", "unlock:alice")


def test_the_address_can_be_copied_when_there_is_one_and_a_clipboard() -> None:
    copy = find_item(build_menu(snap("running")), Action.COPY_ADDRESS)
    assert copy == ItemSpec(f"Copy address: {URL}", Action.COPY_ADDRESS)
    no_clipboard = build_menu(snap("running"), DesktopFacts(can_copy=False))
    greyed = find_item(no_clipboard, Action.COPY_ADDRESS)
    assert greyed is not None and greyed.enabled is False
    assert find_item(build_menu(snap(None)), Action.COPY_ADDRESS) is None


def test_start_hubd_when_away_and_installed_as_a_service() -> None:
    away = build_menu(snap(None), DesktopFacts(service_installed=True))
    assert default_action(away) == Action.START_DAEMON  # a click on the icon starts it
    assert find_item(away, Action.HOW_TO_START) is not None  # still there, not the default
    assert find_item(build_menu(snap(None)), Action.START_DAEMON) is None  # nothing to start
    # The daemon answers: nothing to start.
    running = build_menu(snap("running"), DesktopFacts(service_installed=True))
    assert find_item(running, Action.START_DAEMON) is None


def test_start_at_login_is_a_check_item_where_the_system_can_do_it() -> None:
    on = find_item(
        build_menu(snap("running"), DesktopFacts(starts_at_login=True)), "start-at-login"
    )
    off = find_item(
        build_menu(snap(None), DesktopFacts(starts_at_login=False)), Action.START_AT_LOGIN
    )
    assert on is not None and on.checked is True and on.enabled
    assert off is not None and off.checked is False and off.enabled  # also with no daemon
    assert find_item(build_menu(snap("running")), Action.START_AT_LOGIN) is None


# ---------------------------------------------------------------- notifications


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kinds(tracker: NoticeTracker, *snapshots: Snapshot) -> list[str]:
    return [n.kind for s in snapshots for n in tracker.update(s)]


def test_normal_start_and_stop_are_quiet() -> None:
    tracker = NoticeTracker(timing=Timing())
    assert (
        kinds(
            tracker,
            snap("stopped"),
            snap("starting"),
            snap("running"),
            snap("stopped", desired="stopped"),
        )
        == []
    )


def test_crash_then_recovery() -> None:
    tracker = NoticeTracker(timing=Timing())
    assert kinds(
        tracker,
        snap("running", restart_count=0),
        snap("restarting", restart_count=1),
        snap("starting", restart_count=1),
        snap("running", restart_count=1),
    ) == ["crash", "recovered"]


def test_crash_between_two_polls_is_still_told() -> None:
    tracker = NoticeTracker(timing=Timing())
    assert kinds(tracker, snap("running", restart_count=2), snap("running", restart_count=3)) == [
        "crash"
    ]


def test_crash_loop_is_told_once_and_recovery_after_it() -> None:
    tracker = NoticeTracker(timing=Timing())
    notices = [
        n
        for s in (
            snap("running", restart_count=0),
            snap("restarting", restart_count=1),
            snap("failing", restart_count=3, last_error="exit 1"),
            snap("failing", restart_count=4),
            snap("restarting", restart_count=5),
            snap("running", restart_count=5),
        )
        for n in tracker.update(s)
    ]
    assert [n.kind for n in notices] == ["crash", "crash-loop", "recovered"]
    assert notices[1].message.startswith("exit 1")
    assert notices[2].message == f"It is running again at {URL}"


def test_without_restart_count_the_states_tell_a_crash() -> None:
    assert kinds(
        NoticeTracker(timing=Timing()), snap("running"), snap("restarting"), snap("running")
    ) == [
        "crash",
        "recovered",
    ]


def test_a_restart_from_the_tray_is_no_crash() -> None:
    clock = Clock()
    tracker = NoticeTracker(clock, timing=Timing())
    tracker.update(snap("running"))
    tracker.expect_restart()
    assert kinds(tracker, snap("restarting"), snap("running")) == []
    clock.now += 1  # the window closes once the hub is back: the next crash is told
    assert kinds(tracker, snap("restarting")) == ["crash"]


def test_failing_at_tray_start_is_told_and_the_daemon_going_away() -> None:
    tracker = NoticeTracker(timing=Timing())
    assert kinds(tracker, snap("failing"), snap(None), snap(None)) == ["crash-loop", "daemon-lost"]
    assert kinds(tracker, snap("docker-unavailable"), snap("running")) == ["docker", "recovered"]


# ---------------------------------------------------------------- helpers of the windows


@pytest.mark.parametrize(
    ("name", "password", "again", "field"),
    [
        ("", "secret123", "secret123", "name"),
        ("alice", "short", "short", "password"),
        ("alice", "secret123", "secret124", "again"),
    ],
)
def test_add_user_dialog_checks_locally(name: str, password: str, again: str, field: str) -> None:
    problem = check_locally(name, password, again)
    assert problem is not None and problem[0] == field
    assert check_locally("alice", "x" * MIN_PASSWORD_CHARS, "x" * MIN_PASSWORD_CHARS) is None


def test_tail_of_file(tmp_path: Path) -> None:
    log = tmp_path / "hubd.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert tail_of_file(log, 3) == "line 997\nline 998\nline 999"
    assert tail_of_file(tmp_path / "missing.log").startswith("Cannot read")


def test_qr_code_is_a_png() -> None:
    data = qr_png(URL)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


# ---------------------------------------------------------------- no pystray outside the tray


def test_cli_and_tray_modules_import_without_pystray_or_a_display() -> None:
    code = (
        "import sys, hubd.cli, hubd.tray, hubd._tray.menu, hubd._tray.windows.dialog, "
        "hubd._tray.windows.popup, hubd._tray.windows.address, hubd._tray.windows.text, "
        "hubd._tray.backends.xorg\n"
        "assert 'pystray' not in sys.modules, 'pystray was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_hubd_tray_without_a_display_says_so_without_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "hubd", "tray", "--socket", "/nonexistent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == os.EX_UNAVAILABLE
    assert "Traceback" not in result.stderr
    assert "no graphical session" in result.stderr


def test_hubd_tray_on_wayland_without_a_session_bus_says_so_in_one_line(tmp_path: Path) -> None:
    # pystray's X11 backend (chosen without a display) said 'Bad display name ""' here.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "PYSTRAY_BACKEND")
    }
    env.update({"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "hubd", "tray", "--socket", "/nonexistent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == os.EX_UNAVAILABLE
    assert "Traceback" not in result.stderr and "Bad display name" not in result.stderr
    assert "no D-Bus session bus" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tray_command_finds_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubd.cli import build_parser
    from hubd.cli.context import Context
    from hubd.cli.tray_cmd import place_finder

    args = build_parser().parse_args(["tray", "--socket", str(tmp_path / "c.sock")])
    assert args.socket == str(tmp_path / "c.sock")
    place = place_finder(Context(), args.socket)()
    assert place.socket == tmp_path / "c.sock"

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    monkeypatch.setenv("LOGS_DIRECTORY", str(tmp_path / "log"))
    place = place_finder(Context(), None)()
    assert place.socket == tmp_path / "run" / "control.sock"
    assert place.log_file == tmp_path / "log" / "hubd.log"


def test_details_show_image_problems_and_live_restore() -> None:
    problem = "pulling 127.0.0.1:5999/typo:1 failed: connection refused"
    menu = build_menu(snap("running", image_problems=[problem], engine={"live_restore": False}))
    details = next(item for item in menu if item.label.startswith("Details"))
    assert details.label == "Details (1 problem)"
    labels = [child.label for child in details.children]
    assert labels[0] == f"Problem: {problem}"
    assert "live-restore: off" in labels[1]
    quiet = build_menu(snap("running", engine={"live_restore": True}))
    assert [c.label for c in quiet if c.label == "Details"] == ["Details"]
    assert not any(item.label.startswith("Details") for item in build_menu(snap("running")))


def test_with_hubds_ca_the_phone_address_is_the_trust_page() -> None:
    s = snap(
        "running",
        url="https://jupyter.local/",
        trust_url="http://jupyter.local:8000/",
        fingerprint="AB:CD",
        mdns={"hostname": "jupyter.local", "addresses": ["192.168.1.5"]},
    )
    assert s.hub_url == "https://jupyter.local/"  # "Open" goes to the hub itself
    assert s.phone_url == "http://jupyter.local:8000/"  # the QR code: trust first
    assert s.address_urls == ["http://192.168.1.5:8000/"]
    assert s.fingerprint == "AB:CD"
