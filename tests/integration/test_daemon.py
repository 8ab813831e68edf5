"""`hubd run` supervising a real hub on the real engine."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from docker.errors import NotFound

from tests.integration import engine_control
from tests.integration.daemon_proc import (
    DaemonProc,
    freeze,
    hub_process_pid,
    pause_container,
    wait_for,
)
from tests.integration.docker_env import StackEnv
from tests.integration.hubclient import login, open_lab
from tests.patience import patient

pytestmark = pytest.mark.integration

PASSWORD = "ocean-marble-kettle"


@pytest.fixture
def daemon(stack_env: StackEnv, tmp_path: Path) -> Iterator[DaemonProc]:
    proc = DaemonProc(stack_env, tmp_path / "daemon.log").start()
    try:
        proc.wait_state("running")
        yield proc
    finally:
        proc.stop()


def hub_id(env: StackEnv) -> str:
    return str(env.client.containers.get(env.names.hub_container).id)


def hub_id_if_any(env: StackEnv) -> str:
    """The hub's id, or "" in the moment between removing an old hub and creating a new one."""
    try:
        return hub_id(env)
    except NotFound:
        return ""


def healthy(env: StackEnv) -> bool:
    try:
        return requests.get(f"{env.base_url}/hub/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_killed_hub_is_restarted_at_once(daemon: DaemonProc, stack_env: StackEnv) -> None:
    stack_env.client.containers.get(stack_env.names.hub_container).kill("SIGKILL")
    status = daemon.wait_state("running", 60, where=lambda s: s.restart_count == 1)
    assert healthy(stack_env)
    assert status.last_error is None


def test_frozen_hub_is_detected_and_restarted(daemon: DaemonProc, stack_env: StackEnv) -> None:
    # A hung process: alive to Docker, silent to everyone else. Docker never restarts it.
    freeze(hub_process_pid(stack_env))
    daemon.wait_state("running", 60, where=lambda s: s.restart_count == 1)
    assert healthy(stack_env)
    assert "stopped answering" in daemon.log_tail(80)

    pause_container(stack_env.client, stack_env.names.hub_container)
    daemon.wait_state("running", 60, where=lambda s: s.restart_count == 2)
    assert stack_env.client.containers.get(stack_env.names.hub_container).status == "running"


def test_daemon_restart_adopts_the_hub_and_keeps_users_servers(
    daemon: DaemonProc, stack_env: StackEnv, tmp_path: Path
) -> None:
    stack_env.hubd("user", "add", "--password-stdin", "nia", input=PASSWORD + "\n")
    session = login(stack_env.base_url, "nia", PASSWORD)
    open_lab(session, stack_env.base_url, "nia")
    before_hub = hub_id(stack_env)
    user_container = stack_env.client.containers.get(f"{stack_env.names.user_container_prefix}-nia")

    daemon.kill()  # SIGKILL: no chance to clean up anything
    again = DaemonProc(stack_env, tmp_path / "daemon2.log").start()
    try:
        status = again.wait_state("running")
        assert hub_id(stack_env) == before_hub
        assert status.restart_count == 0
        user_container.reload()
        assert user_container.status == "running"
        assert session.get(f"{stack_env.base_url}/user/nia/lab", timeout=30).status_code == 200
        started = stack_env.client.containers.get(stack_env.names.hub_container).attrs["State"][
            "StartedAt"
        ]
        time.sleep(2)
        assert (
            stack_env.client.containers.get(stack_env.names.hub_container).attrs["State"][
                "StartedAt"
            ]
            == started
        )
    finally:
        again.stop()


@pytest.mark.disrupts_engine
def test_engine_restart_brings_the_stack_back(daemon: DaemonProc, stack_env: StackEnv) -> None:
    engine_control.stop_engine()
    try:
        daemon.wait_state("docker-unavailable", 30)
        assert daemon.status().last_error
    finally:
        engine_control.start_engine()
    daemon.wait_state("running", 120)
    wait_for(lambda: healthy(stack_env), 30, "the hub to answer after the engine came back")


def test_crash_loop_backs_off_and_says_failing(
    stack_env: StackEnv, tmp_path: Path, broken_hub_base: str
) -> None:
    stack_env.write_config(hub_base_image=broken_hub_base)
    proc = DaemonProc(stack_env, tmp_path / "daemon.log").start()
    try:
        status = proc.wait_state("failing", 120)
        assert status.last_error
        # The pauses between attempts grow: attempts get rarer.
        times = []
        deadline = time.monotonic() + patient(25)
        seen = status.restart_count
        gaps: list[float] = []
        while time.monotonic() < deadline:
            count = proc.status().restart_count
            if count != seen:
                times.append(time.monotonic())
                seen = count
                gaps = [b - a for a, b in itertools.pairwise(times)]
                if len(gaps) >= 2 and gaps[-1] > gaps[0] * 1.5:
                    break  # seen growing: no need to watch out the whole deadline
            time.sleep(0.1)
        assert len(gaps) >= 2, (times, proc.log_tail())
        assert gaps[-1] > gaps[0] * 1.5, gaps
        # The same failure is warned about once; repeats go to debug.
        assert proc.log_tail(400).count("WARNING") <= 4
    finally:
        proc.stop()


def test_stop_start_through_the_daemon_and_desired_state_persists(
    daemon: DaemonProc, stack_env: StackEnv, tmp_path: Path
) -> None:
    out = stack_env.hubd("down")
    assert "daemon keeps it stopped" in out.stdout
    daemon.wait_state("stopped", 60)
    assert not healthy(stack_env)
    state_file = Path(stack_env.env["STATE_DIRECTORY"]) / "desired-state.json"
    assert json.loads(state_file.read_text())["desired"] == "stopped"

    # A new daemon (a reboot) keeps it stopped.
    daemon.stop()
    again = DaemonProc(stack_env, tmp_path / "daemon2.log").start()
    try:
        again.wait_state("stopped", 60)
        time.sleep(2)
        assert not healthy(stack_env)
        assert stack_env.hubd("up").stdout.strip().endswith(f":{stack_env.config.port}/")
        again.wait_state("running", 60)
        assert healthy(stack_env)
    finally:
        again.stop()


def test_sigterm_leaves_the_hub_running_and_sighup_applies_config(
    daemon: DaemonProc, stack_env: StackEnv
) -> None:
    before = hub_id(stack_env)
    stack_env.write_config(cull_idle_timeout=1200)
    daemon.signal(signal.SIGHUP)
    wait_for(
        lambda: hub_id_if_any(stack_env) not in ("", before),
        60,
        "the hub to be recreated after SIGHUP",
    )
    daemon.wait_state("running", 60)
    after = hub_id(stack_env)

    assert daemon.stop() == 0
    assert "stopped" in daemon.log_tail(5)
    assert hub_id(stack_env) == after and healthy(stack_env)
    assert not (Path(stack_env.env["RUNTIME_DIRECTORY"]) / "control.sock").exists()


def test_status_and_control_api_through_the_cli(daemon: DaemonProc, stack_env: StackEnv) -> None:
    status = json.loads(stack_env.hubd("status", "--json").stdout)
    assert status["state"] == "running" and status["desired"] == "running"
    assert status["hub"]["healthy"] is True
    assert "daemon:   running" in stack_env.hubd("status").stdout
    lines = daemon.control.logs(20)
    assert lines and any("JupyterHub" in line for line in lines)
    daemon.control.restart()
    daemon.wait_state(
        "running", 60, where=lambda s: s.hub.uptime_s is not None and s.hub.uptime_s < 30
    )
