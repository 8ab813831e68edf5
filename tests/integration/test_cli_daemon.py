"""Issue 23: the command line through a running `hubd run` on the real engine: `hubd up`
shows the daemon's progress, `hubd config set` is applied by the daemon, and a member of
`control_group` without Docker access reads the hub's log and hubd's own."""

from __future__ import annotations

import contextlib
import grp
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.as_nobody import NOBODY, as_nobody, preload_cli
from tests.integration.daemon_proc import DaemonProc
from tests.integration.docker_env import StackEnv

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture
def daemon(stack_env: StackEnv, tmp_path: Path) -> Iterator[DaemonProc]:
    # nobody's own group may use the socket: the person of the last test.
    stack_env.write_config(control_group=grp.getgrgid(NOBODY).gr_name)
    proc = DaemonProc(stack_env, tmp_path / "daemon.log").start()
    try:
        proc.wait_state("running")
        yield proc
    finally:
        proc.stop()


def test_the_cli_through_a_running_daemon(daemon: DaemonProc, stack_env: StackEnv) -> None:
    # `hubd up` through the daemon shows the steps `hubd up` alone shows, as they happen.
    stack_env.hubd("down")
    daemon.wait_state("stopped", 60)
    up = stack_env.hubd("up")
    assert up.stdout.strip().endswith(f":{stack_env.config.port}/")
    assert "starting" in up.stderr and stack_env.names.hub_container in up.stderr, up.stderr

    # `hubd config set`: checked, written, and applied by the daemon before it answers.
    set_ = stack_env.hubd("config", "set", "cull_idle_timeout", "1200")
    assert "the running hubd applied it" in set_.stderr
    assert "config reloaded from" in daemon.log_tail(50)
    assert "cull_idle_timeout = 1200" in stack_env.config_file.read_text()
    refused = stack_env.hubd("config", "set", "cull_idle_timeout", "-5", check=False)
    assert refused.returncode == os.EX_CONFIG and refused.stderr.count("\n") == 1

    # `hubd status` names the log; `hubd logs --daemon` shows it through the socket.
    status = stack_env.hubd("status").stdout
    assert f"log:      {Path(stack_env.env['LOGS_DIRECTORY']) / 'hubd.log'}" in status
    assert "config reloaded" in stack_env.hubd("logs", "--daemon", "-n", "100").stdout

    # A control_group member without Docker access: both logs, through the socket.
    assert _as_member(stack_env, ["logs", "-n", "50"]).startswith("0|")
    hub_log = _as_member(stack_env, ["logs", "-n", "200"])
    assert "JupyterHub" in hub_log, hub_log
    assert "config reloaded" in _as_member(stack_env, ["logs", "--daemon", "-n", "100"])


def _as_member(env: StackEnv, argv: list[str]) -> str:
    """`hubd ARGV` as nobody (in the socket's group, no Docker access): 'code|out|err'."""
    import hubd.control.client
    import hubd.control.routes
    import hubd.timing  # noqa: F401  (nobody may not read this Python's files)
    from hubd.cli import main

    preload_cli()

    runtime = Path(env.env["RUNTIME_DIRECTORY"])
    runtime.chmod(0o755)
    for folder in [env.config_file.parent, *env.config_file.parents]:
        folder.chmod(folder.stat().st_mode | 0o005)
    env.config_file.chmod(0o644)

    def run() -> str:
        os.environ.update(env.env)
        os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # no Docker for them
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(env.config_file), *argv])
        return f"{code}|{out.getvalue()}|{err.getvalue()}"

    return as_nobody(run)
