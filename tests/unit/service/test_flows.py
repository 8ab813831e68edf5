"""install / uninstall / status against simulated systemctl and launchctl (live mode), and
the CLI's confirmations and errors. The real systemctl is exercised in
tests/integration/test_service_systemd.py."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from hubd.cli import main
from hubd.errors import ServiceManagerError, UsageError
from hubd.paths import resolve_paths
from hubd.service import (
    CommandResult,
    HubdCommand,
    Runner,
    Target,
    check_hubd_command,
    find_hubd_command,
    manager_name_for,
    service_manager,
)
from hubd.service import systemd as service_systemd
from hubd.service.launchd import Launchd
from hubd.service.systemd import Systemd

COMMAND = HubdCommand(("/usr/local/bin/hubd",))


def _version_or(argv: Sequence[str]) -> CommandResult | None:
    return CommandResult(0, "hubd 0.1.0\n") if argv[-1] == "--version" else None


class FakeSystemctl:
    """Just enough of systemctl and loginctl, with one unit's state in memory."""

    def __init__(self, user_bus: bool = True) -> None:
        self.enabled = False
        self.state = "inactive"
        self.user_bus = user_bus
        self.calls: list[list[str]] = []
        self.offline: list[bool] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        version = _version_or(argv)
        if version is not None:
            return version
        self.calls.append(list(argv))
        self.offline.append(bool(env and env.get("SYSTEMD_OFFLINE") == "1"))
        if argv[0] == "loginctl":
            return CommandResult(0, "no\n")
        verb = next(word for word in argv[1:] if word != "--user")
        if verb == "show-environment" and not self.user_bus:
            return CommandResult(1, "", "Failed to connect to bus: No medium found")
        if verb == "is-enabled":
            return CommandResult(
                0 if self.enabled else 1, "enabled\n" if self.enabled else "disabled\n"
            )
        if verb == "is-active":
            return CommandResult(0 if self.state == "active" else 3, f"{self.state}\n")
        if verb == "enable":
            self.enabled = True
        elif verb == "disable":
            self.enabled = False
        elif verb in {"start", "restart"}:
            self.state = "active"
        elif verb == "stop":
            self.state = "inactive"
        return CommandResult(0)

    def verbs(self) -> list[str]:
        """The systemctl calls other than the is-enabled/is-active questions."""
        verbs = []
        for call in self.calls:
            words = [word for word in call[1:] if word != "--user"]
            if call[0] == "systemctl" and words[0] not in {"is-enabled", "is-active"}:
                verbs.append(" ".join(words))
        return verbs


class FakeLaunchctl:
    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.calls: list[list[str]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        version = _version_or(argv)
        if version is not None:
            return version
        self.calls.append(list(argv))
        verb = argv[1]
        if verb == "print":
            label = argv[2].rsplit("/", 1)[1]
            if label in self.loaded:
                return CommandResult(0, f"{argv[2]} = {{\n\tstate = running\n}}\n")
            return CommandResult(113, "", f'Could not find service "{label}"')
        if verb == "print-disabled":
            return CommandResult(0, '\t"org.hubd.daemon" => enabled\n')
        if verb == "bootstrap":
            self.loaded.add(plistlib.loads(Path(argv[3]).read_bytes())["Label"])
        if verb == "bootout":
            self.loaded.discard(argv[2].rsplit("/", 1)[1])
        return CommandResult(0)

    def changes(self) -> list[str]:
        return [
            f"{call[1]} {call[-1].rsplit('/', 1)[-1]}"
            for call in self.calls
            if call[1] in {"bootstrap", "bootout", "enable"}
        ]


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH with stand-ins for systemctl and launchctl (only their presence matters)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("systemctl", "launchctl"):
        (folder / name).write_text("#!/bin/sh\nexit 0\n")
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture
def booted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run-systemd-system"
    run_dir.mkdir()
    monkeypatch.setattr(service_systemd, "SYSTEMD_RUN_DIR", run_dir)


def user_target(tmp_path: Path, bin_dir: Path, runner: Runner) -> Target:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Target(
        mode="user", environ={"HOME": str(home), "PATH": str(bin_dir), "USER": "ann"}, runner=runner
    )


# ---------------------------------------------------------------------------- systemd, live


@pytest.mark.usefixtures("booted")
def test_systemd_user_install_is_idempotent_and_uninstall_undoes_it(
    tmp_path: Path, bin_dir: Path
) -> None:
    systemctl = FakeSystemctl()
    manager = Systemd(user_target(tmp_path, bin_dir, systemctl))
    unit = tmp_path / "home/.config/systemd/user/hubd.service"
    entry = tmp_path / "home/.config/autostart/hubd-tray.desktop"

    lines = manager.install(COMMAND)
    assert lines[0] == f"wrote {unit} (the daemon, started with your user session)"
    assert lines[1].startswith(f"wrote {entry}")
    assert any(line.startswith("starting hubd.service in the background") for line in lines)
    assert any("loginctl enable-linger ann" in line for line in lines)
    assert systemctl.verbs() == [
        "show-environment",
        "daemon-reload",
        "enable hubd.service",
        "start --no-block hubd.service",
    ]
    assert "ExecStart=/usr/local/bin/hubd run" in unit.read_text()

    systemctl.calls.clear()
    again = manager.install(COMMAND)
    assert len(again) == 1 and again[0].startswith("hubd service already installed")
    assert systemctl.verbs() == []

    # A different hubd: the unit is rewritten, systemd reloaded, the daemon restarted.
    systemctl.calls.clear()
    lines = manager.install(HubdCommand(("/opt/hubd/bin/hubd",)))
    assert lines[0].startswith(f"wrote {unit}")
    assert systemctl.verbs() == ["daemon-reload", "restart --no-block hubd.service"]

    status = manager.status(COMMAND)
    assert status.installed and status.up_to_date is False
    assert status.activity.enabled is True and status.activity.active is True

    systemctl.calls.clear()
    lines = manager.uninstall(purge=False)
    assert lines[:2] == ["stopped hubd.service", "disabled hubd.service"]
    assert lines[2:4] == [f"removed {unit}", f"removed {entry}"]
    assert not unit.exists() and not entry.exists()
    assert systemctl.verbs() == [
        "stop hubd.service",
        "disable hubd.service",
        "daemon-reload",
        "reset-failed hubd.service",
    ]
    assert manager.uninstall(purge=False) == [
        "hubd service is not installed (systemd, user mode): nothing to remove"
    ]


@pytest.mark.usefixtures("booted")
def test_systemd_starting_means_activating(tmp_path: Path, bin_dir: Path) -> None:
    """What a command typed right after install waits on (hubd.cli.context)."""
    systemctl = FakeSystemctl()
    manager = Systemd(user_target(tmp_path, bin_dir, systemctl))
    for state, starting in [("activating", True), ("active", False), ("inactive", False)]:
        systemctl.state = state
        assert manager.starting() is starting, state


def test_systemd_not_running_is_never_starting(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_systemd, "SYSTEMD_RUN_DIR", tmp_path / "absent")
    systemctl = FakeSystemctl()
    systemctl.state = "activating"
    assert not Systemd(user_target(tmp_path, bin_dir, systemctl)).starting()
    assert systemctl.calls == []


@pytest.mark.usefixtures("booted")
def test_systemd_user_manager_out_of_reach(tmp_path: Path, bin_dir: Path) -> None:
    """su/sudo/ssh without a session: no install, but uninstall still works, offline."""
    systemctl = FakeSystemctl(user_bus=False)
    manager = Systemd(user_target(tmp_path, bin_dir, systemctl))
    with pytest.raises(ServiceManagerError, match="cannot reach your systemd user manager"):
        manager.install(COMMAND)
    Systemd(user_target(tmp_path, bin_dir, FakeSystemctl())).install(COMMAND)
    systemctl.enabled = True
    lines = manager.uninstall(purge=False)
    assert lines[0] == "disabled hubd.service"
    assert systemctl.verbs() == ["show-environment", "disable hubd.service"]
    assert systemctl.offline[-1] is True


def test_systemd_install_refuses_without_a_running_systemd(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_systemd, "SYSTEMD_RUN_DIR", tmp_path / "absent")
    manager = Systemd(user_target(tmp_path, bin_dir, FakeSystemctl()))
    with pytest.raises(ServiceManagerError, match="systemd is not running on this machine"):
        manager.install(COMMAND)
    assert not (tmp_path / "home/.config").exists()


@pytest.mark.usefixtures("booted")
def test_systemd_system_mode_needs_root(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_systemd, "is_root", lambda: False)
    target = Target(mode="system", environ={"PATH": str(bin_dir)}, runner=FakeSystemctl())
    with pytest.raises(UsageError, match="needs root"):
        Systemd(target).install(COMMAND)


def test_without_systemctl_the_message_says_so(tmp_path: Path) -> None:
    target = Target(mode="user", environ={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    with pytest.raises(ServiceManagerError, match="systemctl not found"):
        Systemd(target).install(COMMAND)


def test_other_platforms_get_a_clear_message() -> None:
    assert manager_name_for("linux") == "systemd"
    assert manager_name_for("darwin") == "launchd"
    with pytest.raises(ServiceManagerError, match="not this platform"):
        manager_name_for("win32")


# ---------------------------------------------------------------------------- launchd, live


def test_launchd_user_install_loads_both_jobs_and_uninstall_unloads_them(
    tmp_path: Path, bin_dir: Path
) -> None:
    launchctl = FakeLaunchctl()
    manager = Launchd(user_target(tmp_path, bin_dir, launchctl))
    agents = tmp_path / "home/Library/LaunchAgents"
    logs = tmp_path / "home/Library/Logs/hubd"

    lines = manager.install(COMMAND)
    assert f"wrote {agents}/org.hubd.daemon.plist (the daemon, started at your login)" in lines
    assert logs.is_dir()
    assert launchctl.changes() == [
        "enable org.hubd.daemon",
        "bootstrap org.hubd.daemon.plist",
        "enable org.hubd.tray",
        "bootstrap org.hubd.tray.plist",
    ]
    assert plistlib.loads((agents / "org.hubd.daemon.plist").read_bytes())["ProgramArguments"] == [
        "/usr/local/bin/hubd",
        "run",
    ]

    launchctl.calls.clear()
    again = manager.install(COMMAND)
    assert len(again) == 1 and again[0].startswith("hubd service already installed")
    assert launchctl.changes() == []

    status = manager.status(COMMAND)
    assert status.activity.active is True and status.activity.active_text == "running"

    launchctl.calls.clear()
    lines = manager.uninstall(purge=False)
    assert launchctl.changes() == ["bootout org.hubd.daemon", "bootout org.hubd.tray"]
    assert not any(agents.iterdir())
    assert not logs.exists()  # it was empty


def test_launchd_tray_that_cannot_start_now_is_not_fatal(tmp_path: Path, bin_dir: Path) -> None:
    launchctl = FakeLaunchctl()

    def no_window_server(
        argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        if argv[1:2] == ["bootstrap"] and argv[-1].endswith("org.hubd.tray.plist"):
            return CommandResult(
                125, "", "Bootstrap failed: 125: Domain does not support specified action"
            )
        return launchctl(argv, env=env, cwd=cwd)

    lines = Launchd(user_target(tmp_path, bin_dir, no_window_server)).install(COMMAND)
    assert launchctl.loaded == {"org.hubd.daemon"}
    assert lines[-1].startswith("the tray was not started now (")
    assert lines[-1].endswith("it starts at your next graphical login")


def test_launchd_keeps_logs_unless_purged(tmp_path: Path, bin_dir: Path) -> None:
    manager = Launchd(user_target(tmp_path, bin_dir, FakeLaunchctl()))
    manager.install(COMMAND)
    log = tmp_path / "home/Library/Logs/hubd/hubd.log"
    log.write_text("x\n")
    lines = manager.uninstall(purge=False)
    assert log.exists()
    assert lines[-1].startswith("kept hubd's config, state and logs:")
    lines = manager.uninstall(purge=True)
    assert not log.parent.exists()
    assert lines[-1].endswith("`hubd purge` removes those")


# ---------------------------------------------------------------------------- the executable


def test_find_hubd_command_prefers_the_script_next_to_python(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    assert find_hubd_command(str(python)).argv == (str(python), "-m", "hubd")
    script = tmp_path / "hubd"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert find_hubd_command(str(python)).argv == (str(script),)


def test_check_hubd_command_runs_it_like_a_service_manager() -> None:
    seen: dict[str, object] = {}

    def runner(
        argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> CommandResult:
        seen.update(argv=list(argv), env=env, cwd=cwd)
        return CommandResult(1, "", "No module named hubd")

    with pytest.raises(UsageError, match=r"No module named hubd.*install hubd with pip"):
        check_hubd_command(HubdCommand(("/usr/bin/python3", "-m", "hubd")), runner)
    assert seen["argv"] == ["/usr/bin/python3", "-m", "hubd", "--version"]
    assert seen["cwd"] == "/"
    env = seen["env"]
    assert isinstance(env, dict) and "PYTHONPATH" not in env and "PATH" in env


@pytest.mark.parametrize("argv", [("hubd",), ("/opt/bad\npath/hubd",)])
def test_check_hubd_command_refuses_paths_a_unit_cannot_hold(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        check_hubd_command(HubdCommand(argv), lambda *a, **k: CommandResult(0, "hubd 0.1.0"))


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture
def fake_hubd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable that answers --version like hubd, as the command the CLI installs."""
    script = tmp_path / "venv bin" / "hubd"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\necho "hubd 0.1.0"\n')
    script.chmod(0o755)
    monkeypatch.setattr(
        "hubd.cli.service_cmd.find_hubd_command", lambda: HubdCommand((str(script),))
    )
    return script


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def make_system_data(root: Path) -> list[Path]:
    paths = resolve_paths("system", environ={})
    folders = [
        root / path.relative_to("/") for path in (paths.config_dir, paths.state_dir, paths.log_dir)
    ]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "something").write_text("x")
    return folders


@pytest.mark.usefixtures("fake_hubd")
def test_cli_launchd_round_trip_into_a_root(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--manager", "launchd", "--root", str(root)]
    assert main(["service", "install", "--system", *args]) == 0
    out = capsys.readouterr().out
    assert f"wrote {root}/Library/LaunchDaemons/org.hubd.daemon.plist" in out
    assert main(["service", "uninstall", *args]) == 0
    assert list(root.iterdir()) == []


def test_cli_uninstall_of_nothing_says_so_and_succeeds(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["service", "uninstall", "--system", "--root", str(root)]) == 0
    assert capsys.readouterr().out == (
        f"hubd service is not installed (systemd, system mode, under {root}): nothing to remove\n"
    )


def test_cli_purge_without_terminal_or_yes_is_refused(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = make_system_data(root)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["service", "uninstall", "--system", "--purge", "--root", str(root)]) == 64
    err = capsys.readouterr().err
    assert err.startswith("hubd: --purge deletes") and err.count("\n") == 1
    assert all(folder.exists() for folder in folders)


@pytest.mark.parametrize(("answer", "code", "kept"), [("n", 1, True), ("yes", 0, False)])
def test_cli_purge_asks_first(
    answer: str,
    code: int,
    kept: bool,
    root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folders = make_system_data(root)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    assert main(["service", "uninstall", "--system", "--purge", "--root", str(root)]) == code
    captured = capsys.readouterr()
    assert "Docker volumes (users' work and accounts) are kept" in captured.err
    assert all(folder.exists() == kept for folder in folders)
    if kept:
        assert captured.err.rstrip().endswith("hubd: --purge not confirmed: nothing was changed")
    else:
        assert "`hubd purge` removes those" in captured.out


def test_cli_purge_with_yes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = make_system_data(root)
    assert main(["service", "uninstall", "--system", "--purge", "--yes", "--root", str(root)]) == 0
    assert not any(folder.exists() for folder in folders)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["service", "install", "--manager", "launchd"], "hubd: --manager goes with --root"),
        (
            ["service", "status", "--root", "/nonexistent/dir"],
            "hubd: --root /nonexistent/dir: no such",
        ),
    ],
)
def test_cli_usage_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 64
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.usefixtures("fake_hubd")
def test_cli_both_modes_installed_needs_a_choice(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode in ("--system", "--user"):
        assert main(["service", "install", mode, "--manager", "launchd", "--root", str(root)]) == 0
    assert main(["service", "uninstall", "--manager", "launchd", "--root", str(root)]) == 64
    assert "say which to remove with --system or --user" in capsys.readouterr().err
    assert main(["service", "status", "--json", "--manager", "launchd", "--root", str(root)]) == 0


@pytest.mark.usefixtures("fake_hubd")
def test_cli_dry_run_changes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "install", "--system", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "would write" in out and f"would run: systemctl --root={root} enable hubd.service" in out
    assert list(root.iterdir()) == []


def test_service_manager_by_name(tmp_path: Path) -> None:
    target = Target(mode="user", root=tmp_path)
    assert isinstance(service_manager(target, "systemd"), Systemd)
    assert isinstance(service_manager(target, "launchd"), Launchd)
    with pytest.raises(UsageError):
        service_manager(target, "upstart")
