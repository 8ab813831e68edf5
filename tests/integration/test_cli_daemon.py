"""Issue 23: the command line through a running `hubd run` on the real engine: `hubd up`
shows the daemon's progress, `hubd config set` is applied by the daemon, and a member of
`control_group` without Docker access reads and follows the hub's log and hubd's own."""

from __future__ import annotations

import contextlib
import grp
import io
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

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
    # (The config change above has the daemon recreate the hub: its new log may be empty
    # for a moment.)
    deadline = time.monotonic() + 60
    while "JupyterHub" not in (hub_log := _as_member(stack_env, ["logs", "-n", "200"])):
        assert time.monotonic() < deadline, hub_log
        time.sleep(0.5)
    assert "config reloaded" in _as_member(stack_env, ["logs", "--daemon", "-n", "100"])

    # ... and follows both as they grow, through the socket; Ctrl-C ends it quietly (130).
    with _MemberFollowing(stack_env, ["logs", "-f", "-n", "5"]) as hub_follower:
        hub_follower.probe(stack_env, "/hub/hubd-follow-probe")
        # Through the daemon it follows the hub across a restart, with one line between
        # (Docker's own restart here: hubd's may be folded into a start it has planned).
        ended = "-- the hub's log stream ended"
        before = hub_follower.seen.count(ended)
        stack_env.client.containers.get(stack_env.names.hub_container).restart(timeout=5)
        try:
            hub_follower.wait_for(ended, count=before + 1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nhubd's log:\n{daemon.log_tail(60)}") from None
        daemon.wait_state("running")
        hub_follower.probe(stack_env, "/hub/hubd-follow-after-restart")
        assert hub_follower.interrupt() == (130, "")
    with _MemberFollowing(stack_env, ["logs", "--daemon", "-f", "-n", "1"]) as own_log:
        own_log.wait_for("\n")  # its last line
        before = own_log.seen.count("config reloaded")
        stack_env.hubd("config", "set", "cull_idle_timeout", "1300")  # hubd logs the reload
        own_log.wait_for("config reloaded", count=before + 1)
        # The daemon goes away (stopped, as by `systemctl stop`): one line, exit 69.
        daemon.stop()
        code, err = own_log.result()
        assert (code, err) == (os.EX_UNAVAILABLE, "hubd: hubd stopped\n"), err


def _as_member(env: StackEnv, argv: list[str]) -> str:
    """`hubd ARGV` as nobody (in the socket's group, no Docker access): 'code|out|err'."""
    _prepare_member_access(env)

    def run() -> str:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _member_main(env, argv)
        return f"{code}|{out.getvalue()}|{err.getvalue()}"

    return as_nobody(run)


class _MemberFollowing:
    """`hubd ARGV` following a log as nobody (in the socket's group, no Docker access), in a
    forked child whose output the test reads as it comes."""

    def __init__(self, env: StackEnv, argv: list[str]) -> None:
        _prepare_member_access(env)
        self.env, self.argv = env, argv
        self.seen = ""

    def __enter__(self) -> _MemberFollowing:
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child never returns into pytest
            code = 70
            try:
                os.close(out_read)
                os.close(err_read)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                sys.stdout = io.TextIOWrapper(io.FileIO(out_write, "w"), write_through=True)
                sys.stderr = io.TextIOWrapper(io.FileIO(err_write, "w"), write_through=True)
                code = _member_main(self.env, self.argv)
            finally:
                os._exit(code)
        os.close(out_write)
        os.close(err_write)
        self.out, self.err = out_read, err_read
        return self

    def wait_for(self, text: str, count: int = 1, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.seen.count(text) < count:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.out], [], [], max(left, 0))
            assert ready, f"{text!r} did not come; followed so far:\n{self.seen}"
            chunk = os.read(self.out, 65536)
            assert chunk, f"the follower ended before {text!r}: {self._said()}\n{self.seen}"
            self.seen += chunk.decode(errors="replace")

    def _said(self) -> str:
        """What the follower wrote on standard error so far (it has ended, or is ending)."""
        ready, _, _ = select.select([self.err], [], [], 5)
        return os.read(self.err, 65536).decode(errors="replace") if ready else "(nothing)"

    def probe(self, env: StackEnv, path: str, timeout_s: float = 90) -> None:
        """A line written in the hub's log now, seen by the follower: JupyterHub logs a 404
        as a warning. Asked again while the hub is away (the daemon may be recreating it
        after a config change: the proxy answers then)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{env.base_url}{path}", timeout=5)
            try:
                self.wait_for(path, timeout_s=3)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def interrupt(self) -> tuple[int, str]:
        os.kill(self.pid, signal.SIGINT)  # Ctrl-C
        return self.result()

    def result(self, timeout_s: float = 60) -> tuple[int, str]:
        """The exit code and standard error, once the child ended."""
        deadline = time.monotonic() + timeout_s
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the follower did not end"
            time.sleep(0.1)
        self.pid = 0
        with os.fdopen(self.err, "rb") as err:
            return os.waitstatus_to_exitcode(status), err.read().decode()

    def __exit__(self, *exc: object) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.out)
        with contextlib.suppress(OSError):
            os.close(self.err)


def _prepare_member_access(env: StackEnv) -> None:
    """What the system service's folders allow a control_group member: the socket's folder
    and the config file (only reading)."""
    import hubd.control.client
    import hubd.control.routes
    import hubd.timing  # noqa: F401  (nobody may not read this Python's files)

    preload_cli()

    runtime = Path(env.env["RUNTIME_DIRECTORY"])
    runtime.chmod(0o755)
    for folder in [env.config_file.parent, *env.config_file.parents]:
        folder.chmod(folder.stat().st_mode | 0o005)
    env.config_file.chmod(0o644)


def _member_main(env: StackEnv, argv: list[str]) -> int:
    from hubd.cli import main

    os.environ.update(env.env)
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # no Docker for them
    return main(["--config", str(env.config_file), *argv])
