"""`hubd service install` puts the tray into the desktop's application menu (a
freedesktop entry with Icon=hubd and hicolor icons drawn by the tray's own painter) and
`uninstall` takes all of it away; the tray's "Start at login" and "Start hubd" per service
manager."""

from __future__ import annotations

import io
import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from PIL import Image

from hubd.paths import Mode
from hubd.service import HubdCommand, Runner, Target, installed_daemon, login_items
from hubd.service.launchd import Launchd
from hubd.service.systemd import ICON_SIZES_PX, Systemd
from tests.unit.service.test_flows import COMMAND, FakeSystemctl

pytestmark = pytest.mark.usefixtures("booted")


def recording(calls: list[list[str]]) -> Runner:
    from hubd.service import CommandResult

    def run(
        argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        if argv[-1] == "--version":
            return CommandResult(0, "hubd 0.1.0\n")
        calls.append(list(argv))
        return CommandResult(0, "")

    return run


@pytest.fixture
def booted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-systemd-system"
    run_dir.mkdir()
    monkeypatch.setattr("hubd.service.systemd.SYSTEMD_RUN_DIR", run_dir)


def staged(root: Path, mode: Mode, runner: Runner) -> Target:
    return Target(
        mode=mode,
        root=root,
        environ={"HOME": "/home/ann", "PATH": "/usr/bin:/bin", "USER": "ann"},
        runner=runner,
    )


@pytest.mark.parametrize("mode", ["user", "system"])
def test_install_adds_a_valid_launcher_and_icons_and_uninstall_leaves_nothing(
    tmp_path: Path, mode: Mode
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    manager = Systemd(staged(root, mode, FakeSystemctl()))
    lines = manager.install(COMMAND)
    share = root / "usr/local/share" if mode == "system" else root / "home/ann/.local/share"
    launcher = share / "applications" / "hubd.desktop"
    assert any(line.startswith(f"wrote {launcher}") for line in lines)
    text = launcher.read_text()
    assert "Exec=/usr/local/bin/hubd tray" in text and "Icon=hubd" in text
    assert "NoDisplay" not in text  # this one is for the menu
    autostart = manager.target.on_disk(manager.autostart_dir() / "hubd-tray.desktop")
    assert "Icon=hubd" in autostart.read_text()
    if shutil.which("desktop-file-validate"):
        for entry in (launcher, autostart):
            check = subprocess.run(
                ["desktop-file-validate", str(entry)], capture_output=True, text=True
            )
            assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    hicolor = share / "icons" / "hicolor"
    for size in ICON_SIZES_PX:
        with Image.open(hicolor / f"{size}x{size}" / "apps" / "hubd.png") as image:
            assert image.size == (size, size) and image.mode == "RGBA"
    svg = ET.parse(hicolor / "scalable" / "apps" / "hubd.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 64 64"

    manager.uninstall(purge=False)
    assert list(root.iterdir()) == []  # no file, no empty folder


def test_the_menu_icon_is_the_running_trays_picture() -> None:
    from hubd._tray.icons import draw_icon
    from hubd._tray.state import TrayState
    from hubd.tray import app_icon_png

    with Image.open(io.BytesIO(app_icon_png(48))) as image:
        assert image.tobytes() == draw_icon(TrayState.RUNNING, 48).tobytes()


# ---------------------------------------------------------------- Start at login (Linux)


def xdg(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg"),
        "PATH": "/usr/bin:/bin",
    }


def test_start_at_login_writes_and_removes_this_users_entry(tmp_path: Path) -> None:
    items = login_items(xdg(tmp_path), name="systemd")
    entry = tmp_path / "config" / "autostart" / "hubd-tray.desktop"
    assert items.tray_starts_at_login() is False
    items.set_tray_starts_at_login(True, COMMAND)
    assert entry.exists() and items.tray_starts_at_login() is True
    assert "Exec=/usr/local/bin/hubd tray" in entry.read_text()
    items.set_tray_starts_at_login(False, COMMAND)
    assert not entry.exists() and items.tray_starts_at_login() is False


def test_start_at_login_off_hides_a_system_wide_entry_for_this_user_only(tmp_path: Path) -> None:
    system_entry = tmp_path / "etc-xdg" / "autostart" / "hubd-tray.desktop"
    system_entry.parent.mkdir(parents=True)
    system_entry.write_text("[Desktop Entry]\nType=Application\nName=hubd\nExec=hubd tray\n")
    items = login_items(xdg(tmp_path), name="systemd")
    assert items.tray_starts_at_login() is True  # `sudo hubd service install` put it there
    items.set_tray_starts_at_login(False, COMMAND)
    user_entry = tmp_path / "config" / "autostart" / "hubd-tray.desktop"
    assert "Hidden=true" in user_entry.read_text()
    assert items.tray_starts_at_login() is False
    assert system_entry.exists()  # everyone else's is untouched
    items.set_tray_starts_at_login(True, COMMAND)
    assert "Hidden=true" not in user_entry.read_text()
    assert items.tray_starts_at_login() is True


# ---------------------------------------------------------------- Start hubd


def test_start_hubd_finds_the_installed_user_service_and_starts_it(tmp_path: Path) -> None:
    environ = xdg(tmp_path)
    assert installed_daemon(environ, name="systemd") is None
    unit = tmp_path / "config" / "systemd" / "user" / "hubd.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    manager = installed_daemon(environ, name="systemd")
    assert manager is not None and manager.target.mode == "user"
    assert manager.start_argv()[:2] == ["systemctl", "--user"]
    assert manager.start_argv()[-3:] == ["start", "--no-block", "hubd.service"]


def test_launchd_start_and_start_at_login(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    home = tmp_path / "home"
    target = Target(mode="user", environ={"HOME": str(home)}, runner=recording(calls))
    launchd = Launchd(target)
    assert launchd.start_argv()[:2] == ["launchctl", "kickstart"]
    assert launchd.start_argv()[2].endswith("/org.hubd.daemon")
    plist = home / "Library" / "LaunchAgents" / "org.hubd.tray.plist"
    launchd.set_tray_starts_at_login(True, HubdCommand(("/usr/local/bin/hubd",)))
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"] == ["/usr/local/bin/hubd", "tray"] and data["RunAtLoad"]
    assert launchd.tray_starts_at_login() is True
    launchd.set_tray_starts_at_login(False, HubdCommand(("/usr/local/bin/hubd",)))
    assert not plist.exists() and launchd.tray_starts_at_login() is False
