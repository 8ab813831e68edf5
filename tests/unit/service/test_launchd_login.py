"""macOS at login: the per-user LaunchAgent, the LaunchDaemon only for a root engine, and no
relaunch loop on a config error. Read with plistlib from the generated files; hubd is then run
with the environment the agent gives it."""

from __future__ import annotations

import os
import plistlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubd.errors import FIX_THE_CONFIG_EXIT_CODES, UsageError
from hubd.service import HubdCommand, Target, read_template
from hubd.service.launchd import Launchd, per_user_engine

PYTHON_HUBD = HubdCommand((sys.executable, "-m", "hubd"))


def generated_job(mode: str, home: Path, tmp_path: Path) -> dict[str, Any]:
    """The daemon's plist as `hubd service install` writes it (read back with plistlib)."""
    target = Target(
        mode="system" if mode == "system" else "user", root=tmp_path, environ={"HOME": str(home)}
    )
    daemon, _tray = Launchd(target).render(PYTHON_HUBD)
    job: dict[str, Any] = plistlib.loads(daemon.content)
    return job


def environment_of(job: dict[str, Any], home: Path) -> dict[str, str]:
    """What launchd gives the job: its EnvironmentVariables, plus HOME, USER and a few
    session variables (launchd sets HOME for an agent to its user's home)."""
    return {
        **job["EnvironmentVariables"],
        "HOME": str(home),
        "USER": os.environ.get("USER", "root"),
        "TMPDIR": str(home / "tmp"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", os.getcwd()),
    }


@pytest.mark.parametrize("mode", ["user", "system"])
def test_keepalive_only_after_a_crash(mode: str, tmp_path: Path) -> None:
    job = generated_job(mode, tmp_path / "home", tmp_path)
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["EnvironmentVariables"]["HUBD_SERVICE_MANAGER"] == "launchd"
    assert job["RunAtLoad"] is True


def test_the_agent_is_the_default_for_a_person(tmp_path: Path) -> None:
    """Not root: `hubd service install` writes the agent into ~/Library/LaunchAgents."""
    home = tmp_path / "home"
    target = Target(mode="user", root=tmp_path, environ={"HOME": str(home)})
    daemon, _tray = Launchd(target).render(PYTHON_HUBD)
    assert str(daemon.path) == f"{home}/Library/LaunchAgents/org.hubd.daemon.plist"
    job = plistlib.loads(daemon.content)
    # Docker Desktop's per-user CLI helpers come first on the agent's PATH.
    assert job["EnvironmentVariables"]["PATH"].split(":")[0] == f"{home}/.docker/bin"


def test_systemd_prevents_restarts_for_the_same_exit_codes() -> None:
    for unit in ("systemd/system/hubd.service", "systemd/user/hubd.service"):
        line = re.search(r"^RestartPreventExitStatus=(.+)$", read_template(unit), re.M)
        assert line is not None
        assert {int(code) for code in line.group(1).split()} == set(FIX_THE_CONFIG_EXIT_CODES)


def run_as_agent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )


@pytest.mark.parametrize("mode", ["user", "system"])
def test_a_config_error_under_launchd_is_not_relaunched(mode: str, tmp_path: Path) -> None:
    """With the job's own environment, `hubd run` with a bad config says why on stderr (into
    launchd.err.log) and exits 0, which KeepAlive {SuccessfulExit: false} does not relaunch;
    outside launchd the same is exit 78."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    job = generated_job(mode, home, tmp_path)
    env = environment_of(job, home)
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'eighty'\n")
    under_launchd = run_as_agent(env, "--config", str(bad), *job["ProgramArguments"][3:])
    assert job["ProgramArguments"][3:] == ["run"]
    assert under_launchd.returncode == 0, under_launchd.stderr
    assert "port" in under_launchd.stderr and "launchd does not start hubd" in under_launchd.stderr
    elsewhere = {k: v for k, v in env.items() if k != "HUBD_SERVICE_MANAGER"}
    assert run_as_agent(elsewhere, "--config", str(bad), "run").returncode == 78
    # A crash-like failure (an engine that is not there) keeps its non-zero status: relaunched.
    missing = run_as_agent({**env, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}, "status")
    assert missing.returncode not in (0, *FIX_THE_CONFIG_EXIT_CODES)


@pytest.mark.parametrize("mode", ["user", "system"])
def test_the_jobs_environment_is_a_good_config(mode: str, tmp_path: Path) -> None:
    """The job's own variables (HUBD_SERVICE_MANAGER among them) are no config keys: hubd
    under launchd reads its config like anywhere else."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    env = environment_of(generated_job(mode, home, tmp_path), home)
    assert env["HUBD_SERVICE_MANAGER"] == "launchd"
    shown = run_as_agent(env, "config", "show")
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert "port = 8000" in shown.stdout


def test_the_agent_finds_the_users_docker_context(tmp_path: Path) -> None:
    """The agent's environment (HOME, no DOCKER_HOST) leads hubd to the user's current Docker
    context, e.g. Docker Desktop's: the message names that context's socket."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    env = environment_of(generated_job("user", home, tmp_path), home)
    made = subprocess.run(
        ["docker", "context", "create", "desktop-linux", "--docker",
         f"host=unix://{home}/.docker/run/docker.sock"],
        env={**env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    subprocess.run(
        ["docker", "context", "use", "desktop-linux"],
        env={**env, "PATH": os.environ["PATH"]},
        check=True,
        capture_output=True,
    )
    result = run_as_agent(env, "status")
    assert result.returncode != 0
    assert f"unix://{home}/.docker/run/docker.sock (Docker context 'desktop-linux')" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("socket", "per_user"),
    [
        ("/Users/ann/.docker/run/docker.sock", True),
        ("/Users/ann/.colima/default/docker.sock", True),
        ("/Users/ann/.orbstack/run/docker.sock", True),
        ("/var/run/docker.sock", False),
    ],
)
def test_per_user_engines(socket: str, per_user: bool) -> None:
    assert per_user_engine(socket) is per_user


def test_the_daemon_is_refused_for_a_per_user_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Docker Desktop's /var/run/docker.sock is a symlink into its user's home.
    desktop = tmp_path / "Users" / "ann" / ".docker" / "run"
    desktop.mkdir(parents=True)
    (desktop / "docker.sock").touch()
    link = tmp_path / "docker.sock"
    link.symlink_to(desktop / "docker.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{link}")
    launchd = Launchd(Target(mode="system", root=tmp_path))
    with pytest.raises(UsageError, match=r"runs per user.*LaunchAgent"):
        launchd._check_root_engine()
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    launchd._check_root_engine()  # a root engine: the LaunchDaemon is fine
