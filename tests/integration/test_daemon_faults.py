"""Every fault path of `hubd run` ends with the hub up or a clear reason.

Each fault is produced for real: a hub process stopped with SIGSTOP before or while it
starts, `dockerd` itself frozen (under the exclusive engine lock: `-k engine`), a pull over a
slow or stalled link (a registry on loopback), a network removed by hand, an image that
cannot be pulled.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hubd.stack.naming import StackNames
from hubd.stack.settings import SETTINGS_FILE
from tests.integration import engine_control
from tests.integration.daemon_proc import (
    FAST_TIMING,
    DaemonProc,
    freeze,
    hub_process_pid,
    wait_for,
)
from tests.integration.docker_env import StackEnv
from tests.integration.fake_engine import EngineProxy
from tests.integration.hubclient import login, open_lab, read_file, write_file
from tests.integration.notify_listener import NotifyListener
from tests.integration.slow_registry import SlowRegistry

pytestmark = pytest.mark.integration

PASSWORD = "ocean-marble-kettle"
# FAST_TIMING's hang budget: 3 probes x (0.5 s interval + 1.5 s timeout) = 6 s. The ready
# deadline stays at its default (120 s): a test that passes within 60 s shows that a frozen
# hub is not left to the ready deadline.
WITHIN_HANG_BUDGET_S = 60


def hub_id(env: StackEnv) -> str:
    return str(env.client.containers.get(env.names.hub_container).id)


def healthy(env: StackEnv) -> bool:
    try:
        return requests.get(f"{env.base_url}/hub/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def daemons(stack_env: StackEnv, tmp_path: Path) -> Iterator[list[DaemonProc]]:
    """Daemons a test starts; all stopped at the end."""
    started: list[DaemonProc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def start_daemon(
    env: StackEnv, tmp_path: Path, daemons: list[DaemonProc], timing: str = FAST_TIMING, **env_: str
) -> DaemonProc:
    proc = DaemonProc(env, tmp_path / f"daemon{len(daemons)}.log", timing=timing)
    proc.extra_env.update(env_)
    daemons.append(proc)
    return proc.start()


def start_daemon_pulling(
    env: StackEnv,
    tmp_path: Path,
    daemons: list[DaemonProc],
    registry: SlowRegistry,
    timing: str = FAST_TIMING,
) -> DaemonProc:
    """A daemon whose pull of `registry`'s image (allowed as a user image) has begun."""
    env.write_config(allowed_images=[registry.image])
    proc = start_daemon(env, tmp_path, daemons, timing=timing)
    wait_for(lambda: registry.layer_requests >= 1, 120, "the pull to start")
    return proc


# Every pull event the daemon takes in reaches its progress feed (the feed is throttled to
# a twentieth of this), so a test can see that it has taken in the last one.
EVERY_PULL_EVENT = ",pull_report_every_s=0.02"
# A stalled pull's events have all arrived once the feed was this long without a new one.
STALL_QUIET_S = 2.0


def wait_until_stalled(proc: DaemonProc, image: str) -> None:
    """Until the daemon has taken in the stalled pull's last progress event (bytes of the
    one piece the registry sent, then nothing new for a while). A stop signal sent before
    that may meet a late event, which ends the pass gracefully (correct, but not the case
    the caller tests); after it no event comes that the pass could stop at."""
    seen, since, quiet_from = False, 0, time.monotonic()

    def quiet() -> bool:
        nonlocal seen, since, quiet_from
        answer = proc.control.progress(since)
        since = answer["next"]
        if answer["entries"]:
            quiet_from = time.monotonic()
        seen = seen or any(
            entry.get("pull") == image and entry.get("done", 0) > 0 for entry in answer["entries"]
        )
        return seen and time.monotonic() - quiet_from >= STALL_QUIET_S

    wait_for(quiet, 120, "the stalled pull's last progress event")


# ---------------------------------------------------------------------- a frozen hub


def test_a_hub_frozen_when_hubd_starts_is_replaced_within_the_hang_budget(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    stack_env.hubd("up")
    frozen = hub_id(stack_env)
    freeze(hub_process_pid(stack_env))
    proc = start_daemon(stack_env, tmp_path, daemons)
    proc.wait_state("running", WITHIN_HANG_BUDGET_S, where=lambda s: (s.restart_count or 0) >= 1)
    assert healthy(stack_env)
    assert hub_id(stack_env) != frozen  # a new container: the frozen one is gone
    assert "the hub is frozen" in proc.log_tail(200)


def test_a_hub_frozen_while_it_starts_is_killed_without_waiting_for_the_deadline(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    proc = start_daemon(stack_env, tmp_path, daemons)

    def hub_process() -> int | None:
        try:
            return hub_process_pid(stack_env)
        except Exception:
            return None

    wait_for(lambda: hub_process() is not None, 120, "the hub process", interval=0.05)
    pid = hub_process()
    assert pid is not None
    freeze(pid)
    assert not healthy(stack_env), "the hub answered before it was frozen: too late a freeze"
    proc.wait_state("running", WITHIN_HANG_BUDGET_S, where=lambda s: (s.restart_count or 0) >= 1)
    assert healthy(stack_env)
    assert "the hub is frozen" in proc.log_tail(200)


# ---------------------------------------------------------------------- a frozen engine


# Engine calls time out in 4 s. The hub's hang budget is wider than FAST_TIMING's 6 s: after
# the engine comes back, hubd gives the hub that budget to answer, and on a loaded CI machine
# (40 labs starting beside it) a hub that ran all along once took longer and was replaced.
ENGINE_FAULT_TIMING = FAST_TIMING + ",engine_call_timeout_s=4,health_timeout_s=5"


@pytest.mark.disrupts_engine
def test_engine_frozen_hubd_survives_and_comes_back_with_the_same_hub(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    """dockerd SIGSTOPped: it accepts connections and never answers. Run with `-k engine`
    under the exclusive engine lock."""
    proc = start_daemon(stack_env, tmp_path, daemons, timing=ENGINE_FAULT_TIMING)
    proc.wait_state("running")
    stack_env.hubd("user", "add", "--password-stdin", "nia", input=PASSWORD + "\n")
    session = login(stack_env.base_url, "nia", PASSWORD)
    open_lab(session, stack_env.base_url, "nia")
    write_file(session, stack_env.base_url, "nia", "notes.txt", "before the freeze")
    before = hub_id(stack_env)

    with engine_control.engine_frozen():
        proc.wait_state("docker-unavailable", 30)
        # Longer than one engine call's timeout: the loop's calls time out, and it lives on.
        time.sleep(8)
        assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()
        assert proc.status().state == "docker-unavailable"
        # The person's work does not depend on dockerd answering.
        assert read_file(session, stack_env.base_url, "nia", "notes.txt") == "before the freeze"

    proc.wait_state("running", 60)
    assert hub_id(stack_env) == before
    assert proc.status().restart_count == 0
    assert read_file(session, stack_env.base_url, "nia", "notes.txt") == "before the freeze"
    assert "Traceback" not in proc.log_tail(400)


# ---------------------------------------------------------------------- items 3, 4: slow pulls


@pytest.fixture
def registry(stack_env: StackEnv, request: pytest.FixtureRequest) -> Iterator[SlowRegistry]:
    options = getattr(request, "param", {})
    server = SlowRegistry(**options).start()
    try:
        yield server
    finally:
        server.close()
        with contextlib.suppress(Exception):  # never pulled completely
            stack_env.client.images.remove(server.image, force=True)


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    try:
        yield listener
    finally:
        listener.close()


# ~6 s: 192 KiB in 4 KiB pieces, 0.12 s apart.
@pytest.mark.parametrize(
    "registry", [{"size": 192 * 1024, "chunk": 4096, "pause_s": 0.12}], indirect=True
)
def test_a_slow_first_pull_keeps_systemd_watchdog_fed_and_start_timeout_extended(
    stack_env: StackEnv,
    tmp_path: Path,
    daemons: list[DaemonProc],
    registry: SlowRegistry,
    notify: NotifyListener,
) -> None:
    stack_env.write_config(allowed_images=[registry.image])
    # WatchdogSec=2: systemd would kill a hubd that sent no WATCHDOG=1 for 2 s.
    proc = start_daemon(
        stack_env,
        tmp_path,
        daemons,
        NOTIFY_SOCKET=str(notify.path),
        WATCHDOG_USEC="2000000",
    )
    proc.wait_state("running", 120)
    ready = notify.first("READY=1")
    assert ready is not None
    pings = notify.times_of("WATCHDOG=1")
    extends = [at for at in notify.times_of("EXTEND_TIMEOUT_USEC=180000000") if at < ready]
    assert extends, notify.messages
    assert registry.layer_requests >= 1
    # The pull happened before READY=1 (a first start); the pings kept coming through it.
    # Counted, not timed: on a loaded machine one gap may stretch past the watchdog's
    # interval, but a pinger that stopped during the pull leaves whole stretches empty.
    start = notify.messages[0][0]
    pull_s = ready - start
    assert pull_s > 5, "the pull was not slow"
    during = [at for at in pings if start < at < ready]
    assert len(during) >= pull_s / 2, (len(during), pull_s)  # pinged every 1 s when idle
    thirds = [start + pull_s * k / 3 for k in range(4)]
    for begin, end in itertools.pairwise(thirds):
        assert any(begin <= at < end for at in during), (begin - start, end - start, during)


@pytest.mark.parametrize(
    "registry", [{"size": 512 * 1024, "chunk": 2048, "pause_s": 0.2}], indirect=True
)
def test_sigterm_during_a_slow_pull_stops_hubd_promptly_and_cleanly(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc], registry: SlowRegistry
) -> None:
    proc = start_daemon_pulling(stack_env, tmp_path, daemons, registry)
    time.sleep(1)
    proc.signal(signal.SIGTERM)
    assert proc.proc is not None
    code = proc.proc.wait(30)
    # Exit 0 is the proof that the pull's next progress event ended the pass: a stop that
    # waited out the grace period (10 s) would have been forced, exit 1.
    assert code == 0, proc.log_tail()
    assert "stop signal during a long pass" in proc.log_tail(50)


@pytest.mark.parametrize("registry", [{"stall": True}], indirect=True)
def test_stalled_pull_one_signal_forces_the_exit_after_the_grace_period(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc], registry: SlowRegistry
) -> None:
    timing = FAST_TIMING + ",shutdown_grace_s=3" + EVERY_PULL_EVENT
    proc = start_daemon_pulling(stack_env, tmp_path, daemons, registry, timing)
    wait_until_stalled(proc, registry.image)  # no byte comes: no progress event to stop at
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.proc is not None
    code = proc.proc.wait(30)
    assert time.monotonic() - started > 2.5  # the grace period was waited out, not skipped
    assert code == 1
    assert "shutdown took longer than 3 s" in proc.log_tail(20)


@pytest.mark.parametrize("registry", [{"stall": True}], indirect=True)
def test_stalled_pull_a_second_ctrl_c_exits_at_once(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc], registry: SlowRegistry
) -> None:
    timing = FAST_TIMING + ",shutdown_grace_s=60" + EVERY_PULL_EVENT
    proc = start_daemon_pulling(stack_env, tmp_path, daemons, registry, timing)
    wait_until_stalled(proc, registry.image)
    proc.signal(signal.SIGINT)
    time.sleep(1)
    assert proc.proc is not None and proc.proc.poll() is None  # still waiting out the grace
    started = time.monotonic()
    proc.signal(signal.SIGINT)
    code = proc.proc.wait(30)
    assert time.monotonic() - started < 30  # far below the 60 s grace: not waited out
    assert code == 1
    assert "second stop signal" in proc.log_tail(20)


# ---------------------------------------------------------------------- a broken hub


def test_a_hub_container_broken_by_hand_is_recreated(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    client, names = stack_env.client, stack_env.names
    proc = start_daemon(stack_env, tmp_path, daemons)
    proc.wait_state("running")

    # Its settings file deleted, then the hub dies: starting the same container again fails.
    hub = client.containers.get(names.hub_container)
    assert hub.exec_run(f"rm {SETTINGS_FILE}").exit_code == 0
    before = hub.id
    hub.kill("SIGKILL")
    proc.wait_state("running", 90, where=lambda s: hub_id(stack_env) != before)
    assert healthy(stack_env)

    # Its network removed by hand while hubd was not running (Docker refuses while a container
    # is attached: the front and both proxies are stopped first, and have to be replaced too).
    proc.stop()
    hub = client.containers.get(names.hub_container)
    hub.stop(timeout=2)
    for part in (names.proxy_container, names.proxy_standby_container, names.front_container):
        client.containers.get(part).stop(timeout=2)
    client.networks.get(names.network).remove()
    # And its image untagged (`docker rmi -f`).
    client.images.remove(hub.attrs["Config"]["Image"], force=True)
    before = hub.id
    again = start_daemon(stack_env, tmp_path, daemons)
    again.wait_state("running", 120, where=lambda s: hub_id(stack_env) != before)
    assert healthy(stack_env)
    assert "Traceback" not in again.log_tail(400)
    # The standby too, on the new network.
    wait_for(
        lambda: client.containers.get(names.proxy_standby_container).status == "running",
        60,
        "the standby proxy replaced",
    )
    standby = client.containers.get(names.proxy_standby_container)
    assert names.network in standby.attrs["NetworkSettings"]["Networks"]


# ---------------------------------------------------------------------- a bad user image


def test_an_unpullable_user_image_does_not_keep_the_hub_down(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    # A typo'd or offline image: a registry on loopback where nothing listens.
    missing = "127.0.0.1:5999/hubd-missing:1"
    stack_env.write_config(allowed_images=[missing])
    proc = start_daemon(stack_env, tmp_path, daemons)
    status = proc.wait_state("running", 120)
    assert healthy(stack_env)
    assert any(missing in problem for problem in status.image_problems)
    assert f"pulling {missing} failed" in stack_env.hubd("status").stdout
    assert "servers with this image cannot start" in proc.log_tail(200)


# ---------------------------------------------------------------------- two supervisors


def test_a_second_supervisor_for_the_same_stack_refuses_in_one_line(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    first = start_daemon(stack_env, tmp_path, daemons)
    first.wait_state("running")
    # Another control socket (a person's own hubd next to the system service).
    other_env = {**stack_env.env, "RUNTIME_DIRECTORY": str(tmp_path / "run2")}
    result = subprocess.run(
        [sys.executable, "-m", "hubd", "--config", str(stack_env.config_file), "run"],
        env={**other_env, "HUBD_TIMING": FAST_TIMING},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already supervised by another hubd" in lines[0]
    assert f"pid {first.proc.pid if first.proc else '?'}" in lines[0]
    assert first.status().state == "running" and first.status().restart_count == 0


# -------------------------------------------------------------- a frozen engine, without a lock


def test_an_engine_answering_500s_or_nothing_is_survived_and_left_behind(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    """hubd talks to the engine through a stand-in that forwards, answers 500s, or hangs;
    every switch also drops the calls in flight (an engine restarted mid-call)."""
    proxy = EngineProxy()
    try:
        proc = start_daemon(
            stack_env,
            tmp_path,
            daemons,
            timing=ENGINE_FAULT_TIMING,
            DOCKER_HOST=f"unix://{proxy.path}",
        )
        proc.wait_state("running")
        before = hub_id(stack_env)
        for mode in ("error", "hang"):
            proxy.set_mode(mode)
            status = proc.wait_state("docker-unavailable", 30)
            assert status.last_error
            time.sleep(6)  # longer than one call's timeout (4 s here)
            assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()
            assert healthy(stack_env)  # the hub itself never needed the engine
            proxy.set_mode("pass")
            proc.wait_state("running", 60)
        assert hub_id(stack_env) == before, proc.log_tail(80)
        assert proc.status().restart_count == 0
        assert "Traceback" not in proc.log_tail(400)
    finally:
        for proc in daemons:
            proc.stop()
        proxy.close()


# ---------------------------------------------------------------------- SIGHUP


def test_sighup_applies_control_group_and_refuses_a_new_stack_name_in_the_log(
    stack_env: StackEnv, tmp_path: Path, daemons: list[DaemonProc]
) -> None:
    import grp

    proc = start_daemon(stack_env, tmp_path, daemons)
    proc.wait_state("running")
    old_name = stack_env.config.stack_name
    group = grp.getgrgid(65534).gr_name
    stack_env.write_config(stack_name=old_name + "b", control_group=group)
    proc.signal(signal.SIGHUP)
    socket_path = Path(stack_env.env["RUNTIME_DIRECTORY"]) / "control.sock"
    wait_for(lambda: socket_path.stat().st_gid == 65534, 30, "the socket's group to change")
    assert socket_path.stat().st_mode & 0o777 == 0o660
    wait_for(lambda: "config reloaded" in proc.log_tail(50), 30, "the reload")
    assert "takes a restart of hubd" in proc.log_tail(50)
    time.sleep(1)  # the pass after the reload looks at the (unchanged) hub once more
    proc.wait_state("running", 60)
    # The old hub is still the supervised one: no second hub fighting for the port.
    stack_env.client.containers.get(StackNames(old_name).hub_container).kill("SIGKILL")
    status = proc.wait_state("running", 60, where=lambda s: s.restart_count == 1)
    assert status.last_error is None and healthy(stack_env)
    assert stack_env.client.containers.get(StackNames(old_name).hub_container).status == "running"
    assert not stack_env.client.containers.list(all=True, filters={"name": old_name + "b-"})
    stack_env.write_config(stack_name=old_name)  # so the fixture purges the right stack
