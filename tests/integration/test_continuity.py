"""People keep working while the hub (or the proxy, or hubd) fails.

One stack under `hubd run`, two people at work on it (a kernel holding state, an open kernel
websocket, a saved file), then a series of faults. For each, what those people saw: failed
requests to their own servers, the longest outage, kernel state, websocket, file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.images.build import TestImages
from tests.integration import engine_control
from tests.integration.continuity import FaultResult, Person, check_people
from tests.integration.daemon_proc import (
    DaemonProc,
    freeze,
    hub_process_pid,
    pause_container,
    wait_for,
)
from tests.integration.docker_env import StackEnv, own_stack
from tests.patience import patient

pytestmark = pytest.mark.integration

PASSWORD = "harbor-violet-anchor"
PEOPLE = ("alice", "bob")
REPEATS = 2
# Hub SIGKILLs in a row, each followed by a start of the same container.
KILL_ROUNDS = 5
# The front holds requests while the proxy restarts (up to front_proxy_wait_s).
HELD_REQUEST_TIMEOUT_S = 60.0


class Work:
    """The shared stack, its supervisor and the people at work."""

    def __init__(self, env: StackEnv, log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.daemons = 0
        self.daemon = self._new_daemon()
        try:
            self.daemon.wait_state("running", 240)
            for name in PEOPLE:
                env.hubd("user", "add", "--password-stdin", name, input=PASSWORD + "\n")
            self.people = [Person(env.base_url, name, PASSWORD) for name in PEOPLE]
        except BaseException:
            self.daemon.stop()  # else it outlives the test and keeps the stack running
            raise

    def _new_daemon(self) -> DaemonProc:
        self.daemons += 1
        return DaemonProc(self.env, self.log_dir / f"daemon{self.daemons}.log").start()

    @property
    def client(self) -> docker.DockerClient:
        return self.env.client

    def restarts(self) -> int:
        return int(self.daemon.status().restart_count or 0)

    def hub_healthy(self) -> bool:
        try:
            return requests.get(f"{self.env.base_url}/hub/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def fault(
        self,
        name: str,
        act: Callable[[], None],
        recovered: Callable[[], bool],
        request_timeout_s: float = 2.0,
    ) -> FaultResult:
        watches = [person.watch(request_timeout_s) for person in self.people]
        for watch in watches:
            watch.__enter__()
        try:
            act()
            wait_for(recovered, 120, f"recovery from {name}; log:\n{self.daemon.log_tail()}")
            wait_for(self.hub_healthy, 60, f"the hub after {name}")
        finally:
            for watch in watches:
                watch.__exit__()
        result = check_people(name, self.people, watches)
        print(result.line())
        return result

    def fault_until_restarted(
        self, name: str, act: Callable[[], None], request_timeout_s: float = 2.0
    ) -> FaultResult:
        """`fault`, over once the daemon has restarted the stack once more."""
        return self.fault(
            name, act, self.restarted_after(self.restarts()), request_timeout_s=request_timeout_s
        )

    def restarted_after(self, before: int) -> Callable[[], bool]:
        def done() -> bool:
            status = self.daemon.status()
            return status.state == "running" and (status.restart_count or 0) > before

        return done

    def close(self) -> None:
        for person in getattr(self, "people", []):
            person.close()
        self.daemon.stop()


@pytest.fixture(scope="module")
def work(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    test_images: TestImages,
) -> Iterator[Work]:
    tmp = tmp_path_factory.mktemp("continuity")
    with own_stack(tmp, docker_client, test_images) as env:
        work = Work(env, tmp)
        try:
            yield work
        finally:
            work.close()


def assert_nobody_noticed(result: FaultResult) -> None:
    assert result.failed == 0, result.line()
    assert all(result.kernels_kept.values()), result.line()
    assert all(result.sockets_open.values()), result.line()
    assert all(result.files_intact.values()), result.line()


def test_hub_killed_nobody_notices(work: Work) -> None:
    hub = work.env.names.hub_container
    for _ in range(REPEATS):
        result = work.fault_until_restarted(
            "hub SIGKILL", lambda: work.client.containers.get(hub).kill("SIGKILL")
        )
        assert_nobody_noticed(result)


def test_hub_frozen_nobody_notices(work: Work) -> None:
    hub = work.env.names.hub_container
    for _ in range(REPEATS):
        result = work.fault_until_restarted(
            "hub docker pause", lambda: pause_container(work.client, hub)
        )
        assert_nobody_noticed(result)
        result = work.fault_until_restarted(
            "hub SIGSTOP", lambda: freeze(hub_process_pid(work.env))
        )
        assert_nobody_noticed(result)


def test_hub_container_removed_nobody_notices(work: Work) -> None:
    hub = work.env.names.hub_container
    for _ in range(REPEATS):
        old = work.client.containers.get(hub).id

        def recreated(old: str | None = old) -> bool:
            try:
                container = work.client.containers.get(hub)
            except docker.errors.NotFound:
                return False
            return container.id != old and work.daemon.status().state == "running"

        result = work.fault(
            "hub docker rm -f",
            lambda: work.client.containers.get(hub).remove(force=True),
            recreated,
        )
        assert_nobody_noticed(result)


def test_hubd_killed_nobody_notices(work: Work) -> None:
    for _ in range(REPEATS):

        def kill_and_start_again() -> None:
            work.daemon.kill()
            work.daemon = work._new_daemon()

        result = work.fault(
            "hubd run SIGKILL",
            kill_and_start_again,
            lambda: work.daemon.status().state == "running",
        )
        assert_nobody_noticed(result)
        assert work.restarts() == 0  # it adopted the stack, restarted nothing


def test_proxy_killed_only_requests_in_flight_fail(work: Work) -> None:
    """The front holds the port and waits for the restarted proxy, which comes back with its
    routing table: requests meanwhile are late (the slowest answer says how late: about the
    proxy's restart), none fails but the one each person had in flight at the kill (before
    the front: 7-9 failed requests and up to 3 s without an answer on an idle machine)."""
    proxy = work.env.names.proxy_container
    for _ in range(REPEATS):
        result = work.fault_until_restarted(
            "proxy SIGKILL",
            lambda: work.client.containers.get(proxy).kill("SIGKILL"),
            # A held request is late, not failed (a browser waits that long and more).
            request_timeout_s=HELD_REQUEST_TIMEOUT_S,
        )
        for person in work.people:
            person.reconnect()  # as JupyterLab does when its websocket is cut
        # At most the request each person had in flight on a keep-alive connection when the
        # proxy died (the front cannot replay what the proxy had taken; browsers resend it).
        assert result.failed <= len(work.people), result.line()
        # Kernels run in people's servers, which the proxy's death does not touch; the
        # websockets went through the proxy and are cut (JupyterLab reconnects them, and
        # the front holds that try until the proxy is back).
        assert all(p.kernel_kept_state() for p in work.people), result.line()
        assert all(result.files_intact.values()), result.line()


def test_hub_killed_again_and_again_with_a_server_running_comes_back_every_time(
    work: Work,
) -> None:
    """The hub's runtime state (pid files...) starts fresh at every start: JupyterHub used to
    find its proxy's old pid file, take one of its own threads for the proxy and kill itself.
    Each round plants the worst such file (pid 1, the hub's own init), so every round is the
    case that failed; five show it holds start after start (twenty cost 3 min of CI, each
    round a whole JupyterHub start)."""
    stack = work.env.stack()
    hub = work.client.containers.get(work.env.names.hub_container)
    # The same container started again at once, as Docker's restart policy would; hubd would
    # pace deaths in a row (crash-loop backoff), so it watches from the side this time.
    work.daemon.stop()
    try:
        for round_ in range(KILL_ROUNDS):
            hub.exec_run(["sh", "-c", "echo 1 > jupyterhub-proxy.pid"])
            hub.kill("SIGKILL")
            hub.wait(condition="not-running")
            stack.hub.start()
            stack.hub.wait_healthy(patient(60))
            hub.reload()
            assert hub.exec_run(["test", "-e", "jupyterhub-proxy.pid"]).exit_code != 0, round_
    finally:
        work.daemon = work._new_daemon()
    work.daemon.wait_state("running", 120)
    assert all(p.file_intact() and p.kernel_kept_state() for p in work.people)


@pytest.mark.disrupts_engine
def test_engine_restart_keeps_files_and_lets_people_back_in(work: Work) -> None:
    """Needs the exclusive engine lock (run with -k engine under `flock -x`)."""
    live_restore = bool(work.client.info().get("LiveRestoreEnabled"))
    people = work.people

    def restart_engine() -> None:
        engine_control.stop_engine()
        engine_control.start_engine()

    try:
        result = work.fault(
            "engine restart",
            restart_engine,
            lambda: work.daemon.status().state == "running",
        )
    finally:
        engine_control.ensure_engine_running()
    assert all(result.files_intact.values()) or _files_intact_after_respawn(people), result.line()
    if live_restore:
        assert all(result.kernels_kept.values()), result.line()


def _files_intact_after_respawn(people: list[Person]) -> bool:
    """Without live-restore people's servers die with the engine: start them again (as a
    person would, with the same session) and read the file."""
    for person in people:
        person.respawn()
    return all(person.file_intact() for person in people)
