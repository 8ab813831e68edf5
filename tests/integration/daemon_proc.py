"""`hubd run` as a real process, for the supervisor's integration tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from hubd.control import ControlClient
from hubd.errors import HubdError
from hubd.status import Status
from tests.integration.docker_env import StackEnv
from tests.patience import patient

# Small enough to keep tests short, large enough not to flap on a busy 2-core machine.
FAST_TIMING = ",".join(
    [
        "health_interval_s=0.5",
        "health_timeout_s=1.5",
        "health_failures=3",
        "restart_backoff_initial_s=0.5",
        "restart_backoff_max_s=8",
        "restart_stable_after_s=20",
        "failing_after_restarts=3",
        "engine_ping_interval_s=1",
        "engine_ping_timeout_s=2",
        "engine_reconnect_initial_s=0.5",
        "engine_reconnect_max_s=2",
        "reconcile_interval_s=5",
        "container_stop_timeout_s=2",
        "shutdown_grace_s=10",
    ]
)


class DaemonProc:
    def __init__(self, env: StackEnv, log_path: Path, timing: str = FAST_TIMING) -> None:
        self.env = env
        self.log_path = log_path
        self.timing = timing
        self.extra_args: list[str] = []  # e.g. ["-v"] to see the daemon's debug lines
        self.extra_env: dict[str, str] = {}  # e.g. NOTIFY_SOCKET
        self.proc: subprocess.Popen[bytes] | None = None
        self.control = ControlClient(
            Path(env.env["RUNTIME_DIRECTORY"]) / "control.sock", timeout=30
        )

    def start(self) -> DaemonProc:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.env.command_prefix,
                sys.executable,
                "-m",
                "hubd",
                *self.extra_args,
                "--config",
                str(self.env.config_file),
                "run",
            ],
            env={**self.env.env, "HUBD_TIMING": self.timing, **self.extra_env},
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_for(lambda: self.control.is_available(), 30, "the control socket")
        return self

    def status(self) -> Status:
        return self.control.status()

    def wait_state(
        self,
        state: str,
        timeout: float = 120,
        where: Callable[[Status], bool] = lambda s: True,
    ) -> Status:
        found = Status()

        def reached() -> bool:
            nonlocal found
            try:
                found = self.status()
            except HubdError:
                return False
            return found.state == state and where(found)

        try:
            wait_for(reached, timeout, f"state {state}")
        except AssertionError as exc:  # what was last seen, not what was known before waiting
            raise AssertionError(
                f"{exc} (last seen: {found.state}, restarts {found.restart_count}, "
                f"{found.last_error}); log:\n{self.log_tail()}"
            ) from None
        return found

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
) -> float:
    """Wait until `condition()` holds; returns the seconds it took."""
    start = time.monotonic()
    timeout = patient(timeout)
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def hub_process_pid(env: StackEnv) -> int:
    """The host PID of the jupyterhub process in the hub container."""
    container = env.client.containers.get(env.names.hub_container)
    top = container.top(ps_args="-eo pid,args")
    for pid, args in top["Processes"]:
        program = Path(args.split()[0]).name
        # Skip the init processes (docker-init, the image's tini) that merely wrap it.
        if "jupyterhub -f" in args and program not in ("docker-init", "tini"):
            return int(pid)
    raise AssertionError(f"no jupyterhub process in {top}")


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


PAUSE_TRIES = 5


def pause_container(client: docker.DockerClient, name: str) -> None:
    """`docker pause`, tried again when the cgroup v1 freezer gives up: runc thaws the cgroup and
    fails with "unable to freeze" when a task in it is busy at that moment (moby/moby#48205; a
    "game of chances" even after opencontainers/runc#2791). Seen once under a full CI run; the
    fault the test injects is the pause, not that engine error."""
    for attempt in range(PAUSE_TRIES):
        try:
            client.containers.get(name).pause()
            return
        except docker.errors.APIError as error:
            if "unable to freeze" not in str(error) or attempt == PAUSE_TRIES - 1:
                raise
            time.sleep(0.2)
