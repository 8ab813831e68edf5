"""Bad input reaches the person as one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.as_nobody import as_nobody


def hubd(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hubd: ")
    return lines[0]


def test_version() -> None:
    result = hubd("--version")
    assert result.returncode == 0 and result.stdout.startswith("hubd ")


def test_engine_not_running(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}
    for command in (["up"], ["status"], ["user", "list"]):
        line = one_clear_line(hubd(*command, env=env))
        assert "Docker engine is not running" in line or "Docker is not installed" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root (CI is root)")
def test_no_permission_on_the_socket(tmp_path: Path) -> None:
    """A user outside the docker group meets a root-only socket: the message says what to do."""
    import socket

    from hubd.errors import HubdError

    # Imported before becoming `nobody`, who may not read this Python's files.
    from hubd.stack.engine import connect

    path = tmp_path / "docker.sock"
    tmp_path.chmod(0o755)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        path.chmod(0o600)

        def try_to_connect() -> str:
            os.environ["DOCKER_HOST"] = f"unix://{path}"
            try:
                connect(timeout=5)
            except HubdError as exc:
                return f"{type(exc).__name__}: {exc}"
            return "connected?!"

        message = as_nobody(try_to_connect)
    assert message.startswith("DockerPermissionDenied: no permission to use the Docker socket")
    assert "'docker' group" in message


def test_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("port = 'eighty'\n")
    line = one_clear_line(hubd("--config", str(config), "up"))
    assert str(config) in line and "'port'" in line
    assert hubd("--config", str(config), "up").returncode == os.EX_CONFIG


def test_bad_environment_value() -> None:
    line = one_clear_line(hubd("config", "show", env={"HUBD_MDNS_NAME": "not a name"}))
    assert "HUBD_MDNS_NAME" in line


def test_config_path_and_show(tmp_path: Path) -> None:
    assert hubd("config", "path").stdout.strip().endswith("config.toml")
    shown = hubd("config", "show", env={"HUBD_PORT": "8111"})
    assert "port = 8111" in shown.stdout


def test_password_needs_a_terminal_or_stdin(tmp_path: Path) -> None:
    line = one_clear_line(hubd("user", "add", "amy"))
    assert "--password-stdin" in line


def test_bad_username_is_refused_before_anything(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}  # never reached
    line = one_clear_line(
        hubd("user", "add", "--password-stdin", "Amy", env=env, stdin="long-enough-pw\n")
    )
    assert "capital letters" in line


def test_purge_without_terminal_refuses() -> None:
    line = one_clear_line(hubd("purge"))
    assert "--yes" in line
