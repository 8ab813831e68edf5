"""The supervisor's decisions, one reconcile pass at a time, against a fake stack and clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hubd._daemon.supervisor import DesiredState, Supervisor
from hubd.config import Config
from hubd.errors import DockerUnavailable, HubUnhealthy
from hubd.stack import HubContainerState
from hubd.stack.progress import LogReporter
from hubd.status import HubState, UserServer
from hubd.timing import Timing

TIMING = Timing(
    restart_backoff_initial_s=1,
    restart_backoff_max_s=8,
    restart_stable_after_s=30,
    failing_after_restarts=3,
    engine_reconnect_initial_s=0.5,
    engine_reconnect_max_s=4,
)


class FakeStack:
    """Records what the supervisor asks for; its hub is whatever the test says."""

    def __init__(self) -> None:
        self.status = "running"
        self.calls: list[str] = []
        self.fail_start = False
        self.local_url = "http://127.0.0.1:8000/"

    def hub_state(self) -> HubContainerState:
        return HubContainerState(exists=self.status != "missing", status=self.status)

    def up(self) -> None:
        self.calls.append("up")
        self.status = "running"

    def start_hub(self) -> None:
        self.calls.append("start")
        self.status = "exited" if self.fail_start else "running"

    def restart_hub(self, graceful: bool = True) -> None:
        self.calls.append("restart" if graceful else "kill-restart")
        self.status = "running"

    def wait_healthy(self) -> None:
        if self.status != "running":
            raise HubUnhealthy("the hub exited while starting")

    def down(self) -> None:
        self.calls.append("down")
        self.status = "exited"

    def user_servers(self) -> tuple[UserServer, ...]:
        return ()

    def hub_api(self) -> Any:
        raise DockerUnavailable("not needed here")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Supervisor, FakeStack, Clock, list[bool]]:
    stack, clock = FakeStack(), Clock()
    engine_ok = [True]

    def connect() -> Any:
        if not engine_ok[0]:
            raise DockerUnavailable("the Docker engine is not running")
        return object()

    supervisor = Supervisor(
        Config(),
        DesiredState(tmp_path / "desired.json"),
        TIMING,
        connect=connect,
        reporter=LogReporter(),
        clock=clock,
        make_stack=lambda *a, **k: stack,
    )
    return supervisor, stack, clock, engine_ok


def test_first_pass_brings_the_stack_up_then_nothing(rig: Any) -> None:
    supervisor, stack, _, _ = rig
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up"]
    assert supervisor.state == "running" and supervisor.restart_count == 0


def test_a_dead_hub_is_started_at_once(rig: Any) -> None:
    supervisor, stack, _, _ = rig
    supervisor.reconcile_once()
    stack.status = "exited"
    supervisor.reconcile_once()
    assert stack.calls == ["up", "start"]
    assert supervisor.state == "running" and supervisor.restart_count == 1


def test_a_hung_or_paused_hub_is_restarted(rig: Any) -> None:
    supervisor, stack, clock, _ = rig
    supervisor.reconcile_once()
    supervisor.hub_hung.set()
    supervisor.reconcile_once()
    assert stack.calls[-1] == "kill-restart" and not supervisor.hub_hung.is_set()
    clock.now += 100
    stack.status = "paused"
    supervisor.reconcile_once()
    assert stack.calls.count("kill-restart") == 2


def test_crash_loop_backs_off_and_turns_failing(rig: Any) -> None:
    supervisor, stack, clock, _ = rig
    supervisor.reconcile_once()
    stack.fail_start = True
    stack.status = "exited"
    gaps = []
    for _ in range(6):
        supervisor.reconcile_once()
        gap = supervisor.restart_not_before - clock.now
        gaps.append(gap)
        # A pass before the delay is over does nothing.
        starts = stack.calls.count("start")
        clock.now += gap / 2
        supervisor.reconcile_once()
        assert stack.calls.count("start") == starts
        clock.now += gap / 2
    assert gaps == [1, 1, 2, 4, 8, 8]
    assert supervisor.state == "failing"
    assert "exited while starting" in (supervisor.last_error or "")


def test_backoff_is_forgotten_after_a_stable_period(rig: Any) -> None:
    supervisor, stack, clock, _ = rig
    supervisor.reconcile_once()
    for _ in range(3):
        stack.status = "exited"
        clock.now = max(clock.now, supervisor.restart_not_before)
        supervisor.reconcile_once()
    assert supervisor.backoff.failures == 3
    clock.now += TIMING.restart_stable_after_s + 1
    supervisor.reconcile_once()
    assert supervisor.backoff.failures == 0


def test_engine_unavailable_then_back(rig: Any) -> None:
    supervisor, stack, clock, engine_ok = rig
    engine_ok[0] = False
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable"
    assert "not running" in (supervisor.last_error or "")
    engine_ok[0] = True
    supervisor.reconcile_once()  # too early: still backing off
    assert stack.calls == []
    clock.now += 1
    supervisor.reconcile_once()
    assert stack.calls == ["up"] and supervisor.state == "running"

    supervisor.engine_lost.set()
    engine_ok[0] = False
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable" and supervisor.client is None


def test_desired_stopped_is_kept_and_persisted(rig: Any, tmp_path: Path) -> None:
    supervisor, stack, _, _ = rig
    supervisor.reconcile_once()
    supervisor.set_desired(HubState.STOPPED)
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "down"]
    assert supervisor.state == "stopped"
    assert DesiredState(tmp_path / "desired.json").value == "stopped"


def test_restart_on_request_is_not_a_failure(rig: Any) -> None:
    supervisor, stack, _, _ = rig
    supervisor.reconcile_once()
    supervisor.restart_requested.set()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "restart"]
    assert supervisor.restart_count == 0 and supervisor.state == "running"


def test_a_corrupt_desired_state_file_means_running(tmp_path: Path) -> None:
    path = tmp_path / "desired.json"
    path.write_text("{not json")
    assert DesiredState(path).value == "running"
