"""The supervisor's decisions, one reconcile pass at a time, against a fake stack and clock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import docker
import pytest
import requests
import urllib3

from hubd._daemon.supervisor import DesiredState, Supervisor
from hubd.config import Config
from hubd.errors import DockerUnavailable, StackError, StateFileError
from hubd.stack import HubContainerState, Stack, UpResult
from hubd.stack.progress import LogReporter
from hubd.status import HubState, UserServer
from hubd.timing import Timing, hang_budget_s

TIMING = Timing(
    restart_backoff_initial_s=1,
    restart_backoff_max_s=8,
    restart_stable_after_s=30,
    failing_after_restarts=3,
    engine_reconnect_initial_s=0.5,
    engine_reconnect_max_s=4,
)


class FakeFront:
    def __init__(self) -> None:
        self.status = "running"

    def state(self) -> HubContainerState:
        return HubContainerState(exists=self.status != "missing", status=self.status)


class FakeProxy:
    def __init__(self, stack: FakeStack) -> None:
        self.stack = stack

    def state(self) -> HubContainerState:
        status = self.stack.proxy_status
        return HubContainerState(exists=status != "missing", status=status)


class FakeHub:
    """The stack's hub container: its state is the stack's, what it is asked goes there."""

    def __init__(self, stack: FakeStack) -> None:
        self.stack = stack
        self.health_url = stack.local_url + "hub/health"

    def state(self) -> HubContainerState:
        return HubContainerState(exists=self.stack.status != "missing", status=self.stack.status)

    def start(self) -> None:
        self.stack.calls.append("start")
        self.stack.status = "exited" if self.stack.fail_start else "running"

    def restart(self, graceful: bool = True) -> None:
        self.stack.calls.append("restart" if graceful else "kill-restart")
        self.stack.status = "running"

    def is_healthy(self) -> bool:
        stack = self.stack
        return stack.status == "running" and stack.answers and not stack.frozen

    def frozen(self) -> bool:
        return self.stack.frozen

    def log_tail(self, lines: int) -> str:
        return "Traceback: broken"


class FakeStack:
    """Records what the supervisor asks for; its hub is whatever the test says."""

    def __init__(self) -> None:
        self.status = "running"
        self.proxy_status = "running"
        self.front = FakeFront()
        self.proxy = FakeProxy(self)
        self.standby = FakeFront()  # the standby proxy: a container with a status
        self.standby_error: Exception | None = None
        self.hung = "proxy"  # which of front and proxy answers no more
        self.calls: list[str] = []
        self.fail_start = False
        self.answers = True  # /hub/health
        self.frozen = False
        self.up_error: Exception | None = None
        self.image_problems: list[str] = []
        self.local_url = "http://127.0.0.1:8000/"
        self.hub = FakeHub(self)
        self.swarm: str | None = None  # the engine's node when it is a Swarm manager

    def recover_proxy(self, restart: bool) -> None:
        self.calls.append("proxy-restart" if restart else "proxy-start")
        self.proxy_status = "running"

    def recover_standby(self) -> str:
        self.calls.append("standby")
        if self.standby_error is not None:
            raise self.standby_error
        self.standby.status = "running"
        return "started"

    def recover_front(self, restart: bool) -> None:
        self.calls.append("front-restart" if restart else "front-start")
        self.front.status = "running"

    def hung_part(self) -> str:
        return self.hung

    def up(self, wait: bool = True, recreate: bool = False) -> UpResult:
        assert not wait, "the supervisor never blocks on a health wait"
        if self.up_error is not None:
            raise self.up_error
        self.calls.append("up-recreate" if recreate else "up")
        action = "unchanged" if self.status == "running" and not recreate else "started"
        self.status = "exited" if self.fail_start else "running"
        self.proxy_status = self.front.status = self.standby.status = "running"
        return UpResult(url=self.local_url, hub_action=action, image_problems=self.image_problems)

    def down(self) -> None:
        self.calls.append("down")
        self.status = "exited"

    def user_servers(self) -> tuple[UserServer, ...]:
        return ()

    def swarm_node_id(self) -> str | None:
        return self.swarm

    def hub_api(self) -> Any:
        raise DockerUnavailable("not needed here")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# The supervisor, its fake stack, the clock it reads and whether the engine answers.
Rig = tuple[Supervisor, FakeStack, Clock, list[bool]]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
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
        reporter=LogReporter(Timing()),
        clock=clock,
        # FakeStack has the parts of a Stack that the supervisor uses.
        make_stack=lambda *a, **k: cast(Stack, stack),
    )
    return supervisor, stack, clock, engine_ok


def up_and_healthy(supervisor: Supervisor) -> None:
    """The first pass starts the hub, the next sees it answer."""
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert supervisor.state == "running", supervisor.last_error


def test_first_pass_brings_the_stack_up_without_waiting_then_nothing(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    supervisor.reconcile_once()
    assert supervisor.state == "starting" and supervisor.starting is not None
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up"]
    assert supervisor.state == "running" and supervisor.restart_count == 0


def test_node_add_through_the_control_api_brings_the_stack_up_at_the_next_pass(
    rig: Rig,
) -> None:
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    supervisor.reconcile_once()
    stack.swarm = "node-1"  # `hubd node add`: the hub's settings follow at the next up
    supervisor.up_requested.set()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "up"] and not supervisor.up_requested.is_set()
    for _ in range(3):
        supervisor.reconcile_once()
    assert stack.calls == ["up", "up"] and supervisor.state == "running"


def test_a_swarm_made_or_left_by_hand_is_followed_by_a_periodic_pass(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    supervisor.reconcile_once()
    assert stack.calls == ["up"]
    stack.swarm = "node-1"  # `docker swarm init` behind hubd's back
    supervisor.reconcile_once()
    assert stack.calls == ["up", "up"]
    up_and_healthy(supervisor)
    supervisor.reconcile_once()
    stack.swarm = None  # `docker swarm leave --force`
    supervisor.reconcile_once()
    assert stack.calls == ["up", "up", "up"]


def test_a_dead_hub_is_started_at_once(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    stack.status = "exited"
    supervisor.reconcile_once()
    assert stack.calls == ["up", "start"]
    supervisor.reconcile_once()
    assert supervisor.state == "running" and supervisor.restart_count == 1


def test_a_hung_or_paused_hub_is_restarted(rig: Rig) -> None:
    supervisor, stack, clock, _ = rig
    up_and_healthy(supervisor)
    supervisor.hub_hung.set()
    supervisor.reconcile_once()
    assert stack.calls[-1] == "kill-restart" and not supervisor.hub_hung.is_set()
    supervisor.reconcile_once()
    clock.now += 100
    stack.status = "paused"
    supervisor.reconcile_once()
    assert stack.calls.count("kill-restart") == 2


def test_a_hang_reported_during_the_restart_does_not_restart_the_new_hub(rig: Rig) -> None:
    """The monitor's probe begun before the restart fails after it: the start is judged by
    its own deadline, not restarted half-way (and counted twice)."""
    supervisor, stack, _clock, _ = rig
    up_and_healthy(supervisor)
    supervisor.hub_hung.set()
    stack.answers = False  # the new hub is still starting
    supervisor.reconcile_once()
    assert stack.calls.count("kill-restart") == 1 and supervisor.restart_count == 1
    supervisor.hub_hung.set()  # the stale probe's verdict arrives
    supervisor.reconcile_once()
    assert stack.calls.count("kill-restart") == 1 and supervisor.restart_count == 1
    stack.answers = True
    supervisor.reconcile_once()
    assert supervisor.state == "running" and supervisor.restart_count == 1


def test_a_restart_after_a_stable_spell_is_logged_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, _stack, clock, _ = rig
    up_and_healthy(supervisor)
    for _ in range(2):
        supervisor.hub_hung.set()
        supervisor.reconcile_once()
        supervisor.reconcile_once()  # up again
        clock.now += TIMING.restart_stable_after_s + TIMING.restart_backoff_max_s + 1
        supervisor.reconcile_once()  # stable
        clock.now += 1
    restarts = [r for r in caplog.records if "restarting it" in r.getMessage()]
    assert [r.levelname for r in restarts] == ["WARNING", "WARNING"]


def test_the_proxy_is_brought_back_before_the_hub_is_judged(rig: Rig) -> None:
    supervisor, stack, clock, _ = rig
    supervisor.reconcile_once()
    stack.proxy_status = "exited"
    supervisor.hub_hung.set()  # the hub's probe goes through the dead proxy
    supervisor.reconcile_once()
    assert stack.calls == ["up", "proxy-start"]
    assert not supervisor.hub_hung.is_set() and supervisor.state == "running"
    clock.now += 100
    supervisor.proxy_hung.set()
    supervisor.reconcile_once()
    assert stack.calls[-1] == "proxy-restart" and not supervisor.proxy_hung.is_set()
    clock.now += 100
    stack.proxy_status = "missing"  # docker rm -f of the proxy
    supervisor.reconcile_once()
    assert stack.calls[-1] == "up"
    assert supervisor.restart_count == 3


def test_the_standby_proxy_is_brought_back_without_an_outage(rig: Rig) -> None:
    """The standby is no way in while the proxy serves: its death, pause or removal is mended
    without a restart of anything else, the hub's state stays running, and one that will not
    come back is retried after a backoff, not at every pass."""
    supervisor, stack, clock, _ = rig
    up_and_healthy(supervisor)
    for status in ("exited", "paused", "missing"):
        clock.now += 100  # past any backoff
        stack.standby.status = status
        supervisor.reconcile_once()
        assert stack.calls[-1] == "standby" and stack.standby.status == "running"
        assert supervisor.state == "running" and supervisor.restart_count == 0
    assert stack.calls == ["up", "standby", "standby", "standby"]
    stack.standby.status, stack.standby_error = "exited", StackError("no such image")
    clock.now += 100
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls.count("standby") == 4 and supervisor.state == "running"
    clock.now += TIMING.restart_backoff_max_s + 1
    stack.standby_error = None
    supervisor.reconcile_once()
    assert stack.calls.count("standby") == 5 and stack.standby.status == "running"


def test_the_front_is_brought_back_when_it_dies_hangs_or_goes(rig: Rig) -> None:
    """The front holds the port: its death, a hang (the proxy answers past it) and its
    removal are each mended on their own, the proxy left alone."""
    supervisor, stack, clock, _ = rig
    supervisor.reconcile_once()
    stack.front.status = "exited"
    supervisor.reconcile_once()
    assert stack.calls == ["up", "front-start"]
    clock.now += 100
    stack.hung = "front"
    supervisor.proxy_hung.set()  # the probe through the front fails
    supervisor.reconcile_once()
    assert stack.calls[-1] == "front-restart" and not supervisor.proxy_hung.is_set()
    clock.now += 100
    stack.front.status = "paused"
    supervisor.reconcile_once()
    assert stack.calls[-1] == "front-restart"
    clock.now += 100
    stack.front.status = "missing"
    supervisor.reconcile_once()
    assert stack.calls[-1] == "up"
    assert "proxy-start" not in stack.calls and "proxy-restart" not in stack.calls


def test_a_hub_found_running_but_silent_gets_the_hang_budget_not_the_ready_deadline(
    rig: Rig,
) -> None:
    # A hub frozen when hubd starts (or after a reconnect / reload): an adopted hub.
    supervisor, stack, clock, _ = rig
    stack.answers = False
    supervisor.reconcile_once()
    assert supervisor.starting is not None
    assert supervisor.starting.deadline - supervisor.starting.since == hang_budget_s(TIMING)
    assert hang_budget_s(TIMING) < TIMING.hub_ready_deadline_s
    clock.now += hang_budget_s(TIMING) + 0.1
    supervisor.reconcile_once()
    assert "did not answer" in (supervisor.last_error or "")
    # The next attempt, after the backoff, replaces the container.
    stack.answers = True
    clock.now = supervisor.restart_not_before
    supervisor.reconcile_once()
    assert stack.calls == ["up", "up-recreate"]
    supervisor.reconcile_once()
    assert supervisor.state == "running"


def test_a_fresh_hub_gets_the_ready_deadline_but_a_frozen_one_is_killed_at_once(
    rig: Rig,
) -> None:
    supervisor, stack, clock, _ = rig
    stack.status = "missing"
    stack.answers = False
    supervisor.reconcile_once()
    assert supervisor.starting is not None
    assert supervisor.starting.deadline - supervisor.starting.since == TIMING.hub_ready_deadline_s
    clock.now += hang_budget_s(TIMING) + 1
    supervisor.reconcile_once()
    assert supervisor.state == "starting"  # slow, not frozen: still waiting
    stack.frozen = True
    clock.now += TIMING.hub_frozen_check_s
    supervisor.reconcile_once()
    assert "frozen" in (supervisor.last_error or "")
    assert supervisor.needs_up and supervisor.recreate_hub


def test_the_loop_is_never_blocked_by_a_health_wait(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    stack.answers = False
    supervisor.reconcile_once()
    # While starting, the loop comes back soon to look again, instead of sleeping a pass.
    assert supervisor.next_wakeup_s() == TIMING.hub_ready_poll_s


def test_crash_loop_backs_off_and_turns_failing(rig: Rig) -> None:
    supervisor, stack, clock, _ = rig
    up_and_healthy(supervisor)
    stack.fail_start = True
    stack.status = "exited"
    gaps = []
    for _ in range(6):
        supervisor.reconcile_once()  # starts it
        supervisor.reconcile_once()  # sees it exited while starting
        gap = supervisor.restart_not_before - clock.now
        gaps.append(gap)
        # A pass before the delay is over does nothing.
        attempts = len(stack.calls)
        clock.now += gap / 2
        supervisor.reconcile_once()
        assert len(stack.calls) == attempts
        clock.now += gap / 2
    assert gaps == [1, 1, 2, 4, 8, 8]
    assert supervisor.restart_count == 6  # each attempt counted once
    assert supervisor.state == "failing"
    assert "exited while starting" in (supervisor.last_error or "")
    # Every attempt after the first failed start is on a new container.
    assert stack.calls[1:] == ["start"] + ["up-recreate"] * 5


def test_backoff_is_forgotten_after_a_stable_period(rig: Rig) -> None:
    supervisor, stack, clock, _ = rig
    up_and_healthy(supervisor)
    for _ in range(3):
        stack.status = "exited"
        clock.now = max(clock.now, supervisor.restart_not_before)
        supervisor.reconcile_once()
        supervisor.reconcile_once()
    assert supervisor.backoff.failures == 3
    clock.now += TIMING.restart_stable_after_s + 1
    supervisor.reconcile_once()
    assert supervisor.backoff.failures == 0


def test_a_container_that_will_not_start_is_recreated(rig: Rig) -> None:
    # A broken hub container, e.g. its network removed by hand: `docker start` fails every time.
    supervisor, stack, clock, _ = rig
    up_and_healthy(supervisor)
    stack.status = "exited"

    def broken_start() -> None:
        stack.calls.append("start")
        raise StackError("the hub container did not start: network abc not found")

    stack.hub.start = broken_start  # type: ignore[method-assign]
    supervisor.reconcile_once()
    assert "network abc not found" in (supervisor.last_error or "")
    clock.now = supervisor.restart_not_before
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "start", "up-recreate"]
    assert supervisor.state == "running"


def test_up_failing_to_start_the_container_recreates_it_next_time(rig: Rig) -> None:
    supervisor, stack, clock, _ = rig
    stack.up_error = StackError("the hub container did not start: network abc not found")
    supervisor.reconcile_once()
    assert supervisor.recreate_hub
    stack.up_error = None
    clock.now = supervisor.restart_not_before
    supervisor.reconcile_once()
    assert stack.calls == ["up-recreate"]


def test_unpullable_user_images_are_reported_and_the_hub_runs(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    stack.image_problems = ["pulling nosuch/image failed: not found"]
    up_and_healthy(supervisor)
    snapshot = supervisor.snapshot()
    assert snapshot.state == "running"
    assert snapshot.image_problems == ("pulling nosuch/image failed: not found",)


def test_engine_unavailable_then_back(rig: Rig) -> None:
    supervisor, stack, clock, engine_ok = rig
    engine_ok[0] = False
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable"
    assert "not running" in (supervisor.last_error or "")
    engine_ok[0] = True
    supervisor.reconcile_once()  # too early: still backing off
    assert stack.calls == []
    clock.now += 1
    up_and_healthy(supervisor)
    assert stack.calls == ["up"]

    supervisor.engine_lost.set()
    assert supervisor.snapshot().state == "docker-unavailable"  # before the loop gets to it
    engine_ok[0] = False
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable" and supervisor.client is None


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        urllib3.exceptions.ProtocolError("connection broken"),
        docker.errors.APIError("500 Server Error: fake engine"),
        RuntimeError("something nobody thought of"),
    ],
)
def test_the_daemon_survives_whatever_the_engine_raises(rig: Rig, error: Exception) -> None:
    # A sick engine: frozen (ReadTimeout), a broken stream, 500s: never an exception out of
    # the pass, and `docker-unavailable` when the engine does not answer a ping either.
    supervisor, stack, clock, _engine_ok = rig
    up_and_healthy(supervisor)
    pings = [False]
    supervisor.ping = lambda: pings[0]

    def failing_state() -> HubContainerState:
        raise error

    stack.hub.state = failing_state  # type: ignore[method-assign]
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable" and supervisor.client is None
    pings[0] = True
    clock.now += 1  # the supervisor's clock
    supervisor.reconcile_once()
    assert supervisor.client is not None


def test_connect_raising_anything_is_an_unavailable_engine(rig: Rig) -> None:
    supervisor, _, _, _ = rig

    def frozen() -> Any:
        raise requests.exceptions.ReadTimeout("the engine accepted and never answered")

    supervisor.connect = frozen
    supervisor.reconcile_once()
    assert supervisor.state == "docker-unavailable"
    assert "never answered" in (supervisor.last_error or "")


def test_desired_stopped_is_kept_and_persisted(rig: Rig, tmp_path: Path) -> None:
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    supervisor.set_desired(HubState.STOPPED)
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "down"]
    assert supervisor.state == "stopped"
    assert DesiredState(tmp_path / "desired.json").value == "stopped"


def test_restart_on_request_is_not_a_failure(rig: Rig) -> None:
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    supervisor.restart_requested.set()
    supervisor.reconcile_once()
    supervisor.reconcile_once()
    assert stack.calls == ["up", "restart"]
    assert supervisor.restart_count == 0 and supervisor.state == "running"


def test_a_restart_asked_while_the_hub_is_down_is_done_once(rig: Rig) -> None:
    # The start that brings the hub back is the restart that was asked for.
    supervisor, stack, _, _ = rig
    up_and_healthy(supervisor)
    stack.status = "exited"
    supervisor.restart_requested.set()
    for _ in range(4):
        supervisor.reconcile_once()
    assert stack.calls == ["up", "start"]
    assert not supervisor.restart_requested.is_set()


def test_a_corrupt_desired_state_file_means_running_and_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "desired.json"
    path.write_text("{not json")
    assert DesiredState(path).value == "running"
    assert "unreadable" in caplog.text
    assert (tmp_path / "desired.json.corrupt").read_text() == "{not json"
    DesiredState(path).set(HubState.STOPPED)
    assert DesiredState(path).value == "stopped"


def test_desired_state_is_written_atomically_and_memory_follows_the_disk(
    tmp_path: Path,
) -> None:
    # A folder that cannot be written: a clear error, and the wish in memory unchanged
    # (status never claims what a reboot would not do). No temp file is left behind.
    folder = tmp_path / "state"
    folder.mkdir()
    desired = DesiredState(folder / "desired.json")
    desired.set(HubState.STOPPED)
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root ignores modes: make the target a folder instead
            folder.chmod(0o700)
            (folder / "desired.json").unlink()
            (folder / "desired.json").mkdir()
        with pytest.raises(StateFileError, match="could not save"):
            desired.set(HubState.RUNNING)
        assert desired.value == "stopped"
        assert [p.name for p in folder.iterdir()] == ["desired.json"]
    finally:
        folder.chmod(0o700)
