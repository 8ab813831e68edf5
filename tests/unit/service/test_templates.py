"""The service templates in packaging/ and how they are filled in (no systemctl needed)."""

from __future__ import annotations

import plistlib
import re
import sys
from pathlib import Path

import pytest

from hubd.errors import ServiceManagerError
from hubd.paths import resolve_paths
from hubd.service import HubdCommand, Target, fill_placeholders, read_template
from hubd.service.launchd import Launchd, fill_plist
from hubd.service.systemd import Systemd, desktop_command_line, systemd_command_line

UNITS = ["systemd/system/hubd.service", "systemd/user/hubd.service"]
ENTRY = "systemd/autostart/hubd-tray.desktop"
PLISTS = [
    "launchd/LaunchDaemons/org.hubd.daemon.plist",
    "launchd/LaunchAgents/org.hubd.daemon.plist",
    "launchd/LaunchAgents/org.hubd.tray.plist",
]
COMMAND = HubdCommand(("/opt/hubd venv/bin/hubd",))


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def render_unit(mode: str, tmp_path: Path) -> str:
    target = Target(
        mode="system" if mode == "system" else "user",
        root=tmp_path,
        environ={"HOME": "/home/ann", "PATH": "/usr/bin:/bin"},
    )
    files = Systemd(target).render(COMMAND)
    return files[0].content.decode()


# ---------------------------------------------------------------------------- systemd units


@pytest.mark.parametrize("template", UNITS)
def test_every_unit_directive_has_a_comment(template: str) -> None:
    lines = read_template(template).splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith(("#", "[")):
            where = f"{template}:{number + 1}"
            assert lines[number - 1].startswith("#"), f"{where}: {line} lacks a comment"


def test_system_unit_has_what_the_issue_asks_for(tmp_path: Path) -> None:
    unit = directives(render_unit("system", tmp_path))
    assert unit["Type"] == ["notify"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["WatchdogSec"] == ["60s"]
    assert unit["After"] == ["docker.service network-online.target"]
    assert unit["Wants"] == ["docker.service network-online.target"]
    # An engine restart must not take hubd down with it.
    assert "Requires" not in unit and "BindsTo" not in unit
    # Longer than the daemon's own 10 s graceful shutdown.
    assert unit["TimeoutStopSec"] == ["30s"]
    assert set(unit["RestrictAddressFamilies"][0].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    assert unit["ProtectSystem"] == ["strict"]
    # Nothing may hide or pin the Docker socket.
    for key in ("InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "ReadWritePaths"):
        assert key not in unit
    assert unit["WantedBy"] == ["multi-user.target"]
    assert unit["ExecStart"] == ['"/opt/hubd venv/bin/hubd" run']


def test_user_unit_starts_with_the_session(tmp_path: Path) -> None:
    unit = directives(render_unit("user", tmp_path))
    assert unit["Type"] == ["notify"]
    assert unit["WantedBy"] == ["default.target"]
    assert "network-online.target" not in " ".join(unit["After"])  # a system-only target
    assert "LogsDirectory" not in unit


def test_system_unit_directories_are_where_the_cli_looks(tmp_path: Path) -> None:
    unit = directives(render_unit("system", tmp_path))
    paths = resolve_paths("system", environ={})
    assert Path("/var/lib") / unit["StateDirectory"][0] == paths.state_dir
    assert Path("/run") / unit["RuntimeDirectory"][0] == paths.runtime_dir
    assert Path("/var/log") / unit["LogsDirectory"][0] == paths.log_dir
    assert Path("/etc") / unit["ConfigurationDirectory"][0] == paths.config_dir


def test_user_unit_directories_are_where_the_cli_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    environ = {
        "HOME": home,
        "XDG_STATE_HOME": home / ".local/state",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_RUNTIME_DIR": tmp_path / "run",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, str(value))
    unit = directives(render_unit("user", tmp_path))
    paths = resolve_paths("user", environ={})
    assert home / ".local/state" / unit["StateDirectory"][0] == paths.state_dir
    assert tmp_path / "run" / unit["RuntimeDirectory"][0] == paths.runtime_dir
    assert home / ".config" / unit["ConfigurationDirectory"][0] == paths.config_dir


# ---------------------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("/usr/bin/hubd",), "/usr/bin/hubd"),
        (("/usr/bin/python3", "-m", "hubd"), "/usr/bin/python3 -m hubd"),
        (("/opt/my hubd/bin/hubd",), '"/opt/my hubd/bin/hubd"'),
        (("/opt/100%/hubd",), "/opt/100%%/hubd"),
        # systemd expands $ in arguments, not in the executable's path (checked with
        # systemd-analyze verify in tests/integration/test_service_systemd.py).
        (("/opt/$HOME/hubd",), '"/opt/$HOME/hubd"'),
        (("/opt/$HOME/python", "-m", "$x"), '"/opt/$HOME/python" -m "$$x"'),
        (('/opt/a"b\\c/hubd',), '"/opt/a\\"b\\\\c/hubd"'),
    ],
)
def test_systemd_command_line(argv: tuple[str, ...], expected: str) -> None:
    assert systemd_command_line(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("/usr/bin/hubd",), "/usr/bin/hubd"),
        (("/opt/my hubd/bin/hubd",), '"/opt/my hubd/bin/hubd"'),
        (("/opt/100%/hubd",), "/opt/100%%/hubd"),
        # Quoted for the $, then every backslash doubled by the string escape.
        (("/opt/$x/hubd",), '"/opt/\\\\$x/hubd"'),
    ],
)
def test_desktop_command_line(argv: tuple[str, ...], expected: str) -> None:
    assert desktop_command_line(argv) == expected


# ---------------------------------------------------------------------------- placeholders


def test_every_placeholder_is_filled(tmp_path: Path) -> None:
    for mode in ("system", "user"):
        target = Target(
            mode="system" if mode == "system" else "user",
            root=tmp_path,
            environ={"HOME": "/home/ann"},
        )
        for manager in (Systemd(target), Launchd(target)):
            for service_file in manager.render(COMMAND):
                assert b"@HUBD_" not in service_file.content, service_file.path


def test_templates_use_only_known_placeholders() -> None:
    known = {"@HUBD_EXEC@", "@HUBD_PROGRAM@", "@HUBD_VERSION@", "@HUBD_LOG_DIR@", "@HUBD_HOME@"}
    for template in [*UNITS, ENTRY, *PLISTS]:
        used = set(re.findall(r"@HUBD_[A-Z_]+@", read_template(template)))
        assert used <= known, template
        assert "@HUBD_EXEC@" in used, template


def test_an_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(ServiceManagerError, match="@HUBD_NOPE@"):
        fill_placeholders("x=@HUBD_NOPE@", {}, "some/template")


# ---------------------------------------------------------------------------- launchd


@pytest.mark.parametrize("template", PLISTS)
def test_plist_templates_parse(template: str) -> None:
    parsed = plistlib.loads(read_template(template).encode())
    required = {"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "EnvironmentVariables"}
    assert required <= set(parsed)


@pytest.mark.parametrize("mode", ["system", "user"])
def test_rendered_plists_hold_the_required_keys(mode: str, tmp_path: Path) -> None:
    target = Target(
        mode="system" if mode == "system" else "user", root=tmp_path, environ={"HOME": "/Users/ann"}
    )
    daemon, tray = Launchd(target).render(HubdCommand(("/usr/bin/python3", "-m", "hubd")))
    library = "/Library" if mode == "system" else "/Users/ann/Library"
    folder = "LaunchDaemons" if mode == "system" else "LaunchAgents"
    assert str(daemon.path) == f"{library}/{folder}/org.hubd.daemon.plist"
    job = plistlib.loads(daemon.content)
    assert job["Label"] == "org.hubd.daemon"
    assert job["ProgramArguments"] == ["/usr/bin/python3", "-m", "hubd", "run"]
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["StandardOutPath"] == f"{library}/Logs/hubd/launchd.out.log"
    assert job["StandardErrorPath"] == f"{library}/Logs/hubd/launchd.err.log"
    path = job["EnvironmentVariables"]["PATH"].split(":")
    assert "/usr/local/bin" in path and "/opt/homebrew/bin" in path
    agent = plistlib.loads(tray.content)
    assert agent["Label"] == "org.hubd.tray"
    assert agent["ProgramArguments"] == ["/usr/bin/python3", "-m", "hubd", "tray"]
    assert agent["LimitLoadToSessionType"] == "Aqua"
    assert str(tray.path) == f"{library}/LaunchAgents/org.hubd.tray.plist"


def test_fill_plist_splices_the_command() -> None:
    filled = fill_plist(
        {"a": ["@HUBD_EXEC@", "run"], "b": "@HUBD_HOME@/x"},
        HubdCommand(("/p", "-m", "hubd")),
        {"@HUBD_HOME@": "/h"},
        "t",
    )
    assert filled == {"a": ["/p", "-m", "hubd", "run"], "b": "/h/x"}


def test_launchd_locations_are_the_macos_ones_hubd_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformdirs.macos import MacOS

    monkeypatch.setenv("HOME", str(tmp_path))
    user = Launchd(Target(mode="user", environ={"HOME": str(tmp_path)}))
    mac = MacOS("hubd", appauthor=False)
    assert user.log_dir() == Path(mac.user_log_dir)
    assert set(user.data_dirs()) == {
        Path(mac.user_state_dir),
        Path(mac.user_config_dir),
        Path(mac.user_log_dir),
        Path(mac.user_runtime_dir),
    }
    # paths.py decides the system locations on macOS itself.
    monkeypatch.setattr(sys, "platform", "darwin")
    system_paths = resolve_paths("system", environ={})
    system = Launchd(Target(mode="system"))
    assert system.log_dir() == system_paths.log_dir
    assert set(system.data_dirs()) == {
        system_paths.config_dir,
        system_paths.state_dir,
        system_paths.runtime_dir,
        system_paths.log_dir,
    }
