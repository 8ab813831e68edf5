"""`hubd service` with the real tools: systemd-analyze verify on the generated units, the real
systemctl enabling them offline in a temporary root, and the real hubd executable.

Needs Debian's systemd package (systemctl, systemd-analyze) and hubd installed in the
interpreter running the tests (`pip install -e .`); no running systemd, no Docker.
"""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from hubd.errors import UsageError
from hubd.service import HubdCommand, Target, check_hubd_command, command_runner, find_hubd_command
from hubd.service.systemd import SYSTEMD_RUN_DIR, Systemd
from hubd.timing import Timing

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"),
]

BARE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def hubd_command() -> HubdCommand:
    command = find_hubd_command()
    try:
        check_hubd_command(command, command_runner(Timing()))
    except UsageError as exc:
        pytest.skip(f"hubd is not installed in this interpreter: {exc}")
    return command


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=120)


def hubd(command: HubdCommand, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return run([*command.argv, *args], env={**os.environ, "HOME": str(home)})


def render_unit(command: HubdCommand, mode: str, folder: Path) -> Path:
    target = Target(
        mode="system" if mode == "system" else "user",
        root=folder,
        environ={"HOME": str(folder / "home"), "PATH": "/usr/bin:/bin"},
    )
    unit, entry = Systemd(target).render(command)
    path = folder / unit.path.name
    path.write_bytes(unit.content)
    (folder / entry.path.name).write_bytes(entry.content)
    return path


def verify_complaints(unit: Path, mode: str, tmp_path: Path) -> list[str]:
    """What `systemd-analyze verify` says about the unit itself (other units' noise ignored)."""
    env = dict(os.environ)
    argv = ["systemd-analyze", "verify", str(unit)]
    if mode == "user":
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        argv.insert(1, "--user")
    result = run(argv, env=env)
    said = (result.stdout + result.stderr).splitlines()
    complaints = [line for line in said if unit.name in line]
    if result.returncode != 0:
        complaints.append(f"exit status {result.returncode}: {said}")
    return complaints


def snapshot(root: Path) -> dict[str, str | bytes]:
    found: dict[str, str | bytes] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
        else:
            found[key] = "dir"
    return found


def runs_version(argv: list[str]) -> None:
    """The service's command line, as written, starts hubd from / without our environment."""
    assert Path(argv[0]).is_file(), argv
    result = subprocess.run(
        [*argv, "--version"],
        capture_output=True,
        text=True,
        cwd="/",
        env=BARE_ENV,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.startswith("hubd "), result


# ---------------------------------------------------------------------------- verify


@pytest.mark.parametrize("mode", ["system", "user"])
def test_generated_unit_passes_systemd_analyze_verify(
    mode: str, hubd_command: HubdCommand, tmp_path: Path
) -> None:
    unit = render_unit(hubd_command, mode, tmp_path)
    assert verify_complaints(unit, mode, tmp_path) == []


def test_verify_check_would_catch_a_bad_unit(tmp_path: Path) -> None:
    # The check above is only worth something if it sees systemd-analyze's complaints.
    unit = render_unit(HubdCommand(("/nonexistent/bin/hubd",)), "system", tmp_path)
    assert any("is not executable" in line for line in verify_complaints(unit, "system", tmp_path))


def test_an_awkward_exec_path_is_quoted_for_systemd_and_the_desktop(
    hubd_command: HubdCommand, tmp_path: Path
) -> None:
    folder = tmp_path / "my hubd 100% $HOME"
    folder.mkdir()
    wrapper = folder / "hubd"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(hubd_command.argv)} "$@"\n')
    wrapper.chmod(0o755)
    unit = render_unit(HubdCommand((str(wrapper),)), "system", tmp_path)
    # systemd would say "Command ... is not executable" if it split or expanded the path.
    assert verify_complaints(unit, "system", tmp_path) == []
    if shutil.which("desktop-file-validate"):
        result = run(["desktop-file-validate", str(tmp_path / "hubd-tray.desktop")])
        assert result.returncode == 0 and not result.stdout.strip(), result


# ---------------------------------------------------------------------------- round trips


def test_system_round_trip_into_a_root(hubd_command: HubdCommand, tmp_path: Path) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    first = hubd(hubd_command, "service", "install", "--system", "--root", str(root), home=home)
    assert first.returncode == 0, first.stderr
    unit = root / "etc/systemd/system/hubd.service"
    assert (root / "etc/systemd/system/multi-user.target.wants/hubd.service").is_symlink()
    assert (root / "etc/xdg/autostart/hubd-tray.desktop").is_file()
    enabled = run(["systemctl", f"--root={root}", "is-enabled", "hubd.service"])
    assert enabled.stdout.strip() == "enabled"
    assert verify_complaints(unit, "system", tmp_path) == []

    exec_start = next(
        line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")
    )
    words = shlex.split(exec_start.removeprefix("ExecStart="))
    assert words[-1] == "run"
    runs_version(words[:-1])

    files = snapshot(root)
    second = hubd(hubd_command, "service", "install", "--system", "--root", str(root), home=home)
    assert second.returncode == 0
    assert second.stdout.splitlines() == [
        f"hubd service already installed (systemd, system mode, under {root}): {unit}, "
        f"{root}/etc/xdg/autostart/hubd-tray.desktop"
    ]
    assert snapshot(root) == files

    status = hubd(hubd_command, "service", "status", "--json", "--root", str(root), home=home)
    [entry] = json.loads(status.stdout)
    assert entry["installed"] and entry["up_to_date"] and entry["enabled"] is True

    gone = hubd(hubd_command, "service", "uninstall", "--root", str(root), home=home)
    assert gone.returncode == 0, gone.stderr
    assert list(root.iterdir()) == []
    again = hubd(hubd_command, "service", "uninstall", "--root", str(root), home=home)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_user_round_trip_into_a_root(hubd_command: HubdCommand, tmp_path: Path) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    done = hubd(hubd_command, "service", "install", "--user", "--root", str(root), home=home)
    assert done.returncode == 0, done.stderr
    user_dir = root / str(home).lstrip("/") / ".config/systemd/user"
    assert (user_dir / "default.target.wants/hubd.service").is_symlink()
    assert (root / str(home).lstrip("/") / ".config/autostart/hubd-tray.desktop").is_file()
    assert verify_complaints(user_dir / "hubd.service", "user", tmp_path) == []
    files = snapshot(root)
    again = hubd(hubd_command, "service", "install", "--user", "--root", str(root), home=home)
    assert len(again.stdout.splitlines()) == 1 and "already installed" in again.stdout
    assert snapshot(root) == files
    gone = hubd(hubd_command, "service", "uninstall", "--user", "--root", str(root), home=home)
    assert gone.returncode == 0, gone.stderr
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("mode", ["--system", "--user"])
def test_launchd_round_trip_into_a_root(
    mode: str, hubd_command: HubdCommand, tmp_path: Path
) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    args = ("--manager", "launchd", "--root", str(root))
    done = hubd(hubd_command, "service", "install", mode, *args, home=home)
    assert done.returncode == 0, done.stderr
    plists = sorted(root.rglob("*.plist"))
    assert sorted(p.name for p in plists) == ["org.hubd.daemon.plist", "org.hubd.tray.plist"]
    for path in plists:
        job = plistlib.loads(path.read_bytes())
        assert job["RunAtLoad"] is True and "KeepAlive" in job
        runs_version(job["ProgramArguments"][:-1])
    files = snapshot(root)
    again = hubd(hubd_command, "service", "install", mode, *args, home=home)
    assert len(again.stdout.splitlines()) == 1 and "already installed" in again.stdout
    assert snapshot(root) == files
    gone = hubd(hubd_command, "service", "uninstall", mode, *args, home=home)
    assert gone.returncode == 0, gone.stderr
    assert list(root.iterdir()) == []


# ---------------------------------------------------------------------------- this machine


@pytest.mark.skipif(SYSTEMD_RUN_DIR.is_dir(), reason="systemd is running here")
def test_without_a_running_systemd_install_says_so(
    hubd_command: HubdCommand, tmp_path: Path
) -> None:
    unit = Path("/etc/systemd/system/hubd.service")
    if unit.exists():
        pytest.skip(f"{unit} exists on this machine")
    result = hubd(hubd_command, "service", "install", "--system", home=tmp_path)
    assert result.returncode == os.EX_UNAVAILABLE
    assert result.stderr.startswith("hubd: systemd is not running on this machine")
    assert result.stderr.count("\n") == 1
    assert not unit.exists()
