"""The supervisor's decisions: one reconcile pass compares what should be with what is, and acts.

The daemon's loop only schedules `reconcile_once()`; watchers (engine events, health probes,
engine pings) only record what they saw and wake the loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import docker
import requests
import urllib3
from docker.errors import DockerException

from hubd._daemon.backoff import Backoff
from hubd.config import Config
from hubd.errors import (
    DockerPermissionDenied,
    DockerUnavailable,
    HubdError,
    HubUnhealthy,
    StackError,
    StateFileError,
)
from hubd.files import atomic_write
from hubd.logsafe import WarnOnce
from hubd.stack import Stack
from hubd.stack.engine import engine_of
from hubd.stack.progress import Reporter
from hubd.status import DESIRED_STATES, EngineView, HubState, Supervision
from hubd.timing import Timing, hang_budget_s

log = logging.getLogger("hubd._daemon.supervisor")
T = TypeVar("T")

# What an engine that misbehaves raises: refused or dropped connections, timeouts on a frozen
# engine (requests' ReadTimeout, urllib3's errors from a streamed read), errors from the SDK.
ENGINE_ERRORS: tuple[type[BaseException], ...] = (
    DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)


_UNSEEN = object()


class DesiredState:
    """What the owner asked for, kept on disk so a reboot returns to it.

    Written atomically (a temp file, fsync, rename, fsync of the folder): a power cut leaves
    the old or the new file, never half of one. The value in memory changes only once the
    file holds it, so what `hubd status` says is what a reboot will do.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = self._load()

    def _load(self) -> HubState:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return HubState.RUNNING
        except OSError as exc:
            log.warning("cannot read %s (%s): keeping the hub running", self.path, exc)
            return HubState.RUNNING
        try:
            value = json.loads(text).get("desired")
        except (ValueError, AttributeError):
            value = None
        if value in DESIRED_STATES:
            return HubState(value)
        # Running is the safe side: a stopped hub nobody asked for is an outage. The bad file
        # is kept aside for a look, and the next change writes a good one.
        aside = self.path.with_name(self.path.name + ".corrupt")
        with contextlib.suppress(OSError):
            self.path.replace(aside)
        log.warning(
            "the desired-state file %s was unreadable (%r); kept as %s, keeping the hub running",
            self.path,
            text[:60],
            aside.name,
        )
        return HubState.RUNNING

    def set(self, value: HubState) -> None:
        if value == self.value and self.path.exists():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps({"desired": value.value}) + "\n")
        except OSError as exc:
            raise StateFileError(
                f"could not save the wish to keep the hub {value.value} in {self.path}: "
                f"{exc.strerror or exc}; free some space or fix the folder's permissions"
            ) from None
        self.value = value


@dataclass
class HubStart:
    """A hub (re)start in progress: the loop checks it each pass instead of blocking on it."""

    since: float
    deadline: float
    reason: str
    after_failure: bool  # a restart after a death or hang: paced by the crash-loop backoff
    counted: bool = False  # already in restart_count (a restart counts when it begins)
    next_frozen_check: float = 0.0


class Supervisor:
    def __init__(
        self,
        config: Config,
        desired: DesiredState,
        timing: Timing,
        *,
        connect: Callable[[], docker.DockerClient],
        reporter: Reporter,
        clock: Callable[[], float] = time.monotonic,
        make_stack: Callable[..., Stack] = Stack,
        ping: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.desired = desired
        self.timing = timing
        self.connect = connect
        self.reporter = reporter
        self.clock = clock
        self.make_stack = make_stack
        self.ping = ping
        self.lock = threading.RLock()
        self.warn = WarnOnce(log)

        self.client: docker.DockerClient | None = None
        self.stack: Stack | None = None
        self.state: HubState = HubState.STARTING
        self.last_error: str | None = None
        self.restart_count = 0
        self.backoff = Backoff(timing.restart_backoff_initial_s, timing.restart_backoff_max_s)
        self.engine_backoff = Backoff(
            timing.engine_reconnect_initial_s, timing.engine_reconnect_max_s
        )
        self.proxy_backoff = Backoff(timing.restart_backoff_initial_s, timing.restart_backoff_max_s)
        self.proxy_not_before = 0.0
        self.standby_backoff = Backoff(
            timing.restart_backoff_initial_s, timing.restart_backoff_max_s
        )
        self.standby_not_before = 0.0
        self.next_engine_attempt = 0.0
        self.restart_not_before = 0.0
        self.healthy_since: float | None = None
        self.needs_up = True
        self.recreate_hub = False
        self.starting: HubStart | None = None
        self.image_problems: list[str] = []
        self.live_restore: bool | None = None
        self.engine_kind: str | None = None
        self.engine_endpoint: str | None = None
        self.admin_hint_given = False

        # Set by watchers, read and cleared by reconcile_once.
        self.hub_hung = threading.Event()
        self.proxy_hung = threading.Event()
        self.engine_lost = threading.Event()
        self.restart_requested = threading.Event()
        # Set by a control request that changed what the hub's settings depend on (`hubd node
        # add` made the engine a Swarm manager): the next pass brings the stack up again.
        self.up_requested = threading.Event()
        # The engine's Swarm node when the hub was last seen running (None: no Swarm), so a
        # change made behind hubd's back (`docker swarm init` or `leave` by hand) is followed.
        self.swarm_node: str | object | None = _UNSEEN
        self.on_engine_connected: Callable[[docker.DockerClient], None] = lambda _c: None

    # ------------------------------------------------------------------ inputs

    def reload(self, config: Config) -> None:
        with self.lock:
            if config != self.config:
                log.info("config changed: applying it")
                self.config = config
                self.stack = (
                    self.make_stack(self.client, config, reporter=self.reporter, timing=self.timing)
                    if self.client
                    else None
                )
                self.needs_up = True

    def set_desired(self, value: HubState) -> None:
        # No lock either: the owner's wish is recorded at once and acted on by the next pass.
        self.desired.set(value)
        if value == HubState.RUNNING:
            self.needs_up = True
            self.backoff.reset()
            self.restart_not_before = 0.0

    def next_wakeup_s(self) -> float:
        """How long the loop may sleep before a pass is due again."""
        now = self.clock()
        waits = [self.timing.reconcile_interval_s]
        if self.client is None:
            waits.append(self.next_engine_attempt - now)
        elif self.restart_not_before > now:
            waits.append(self.restart_not_before - now)
        elif self.starting is not None:
            waits.append(self.timing.hub_ready_poll_s)
        if self.healthy_since is not None and self.backoff.failures:
            waits.append(self.healthy_since + self.timing.restart_stable_after_s - now)
        return max(0.05, min(waits))

    # ------------------------------------------------------------------ one pass

    def reconcile_once(self) -> None:
        with self.lock:
            if self.engine_lost.is_set():
                self._drop_engine("the Docker engine went away")
            if self.client is None and not self._connect():
                return
            assert self.stack is not None
            if self.up_requested.is_set():
                self.up_requested.clear()
                self.needs_up = True
            try:
                if self.desired.value == HubState.STOPPED:
                    self._keep_stopped(self.stack)
                else:
                    self._keep_running(self.stack)
            except (DockerUnavailable, DockerPermissionDenied) as exc:
                self._drop_engine(str(exc))
            except HubdError as exc:
                self._failed(str(exc))
            except ENGINE_ERRORS as exc:
                self._engine_failed(exc, "Docker refused an operation")
            except Exception as exc:  # the daemon outlives any surprise; the next pass retries
                log.exception("unexpected error in a supervisor pass")
                self._engine_failed(exc, "unexpected error")

    def _engine_failed(self, exc: BaseException, what: str) -> None:
        if self._engine_answers():
            self._failed(f"{what}: {_one_line(exc)}")
        else:
            self._drop_engine(f"the Docker engine stopped answering ({_one_line(exc)})")

    def _connect(self) -> bool:
        if self.clock() < self.next_engine_attempt:
            return False
        try:
            client = self.connect()
            stack = self.make_stack(client, self.config, reporter=self.reporter, timing=self.timing)
            self.on_engine_connected(client)
        except Exception as exc:  # HubdError from connect(); anything from a sick engine
            reason = str(exc) if isinstance(exc, HubdError) else _one_line(exc)
            delay = self.engine_backoff.next_delay() or self.timing.engine_reconnect_initial_s
            self.next_engine_attempt = self.clock() + delay
            self.state, self.last_error = HubState.DOCKER_UNAVAILABLE, reason
            self.warn.warn("engine:" + type(exc).__name__, "%s (retrying)", reason)
            return False
        if self.engine_backoff.failures:
            log.info("the Docker engine is back")
        self.engine_backoff.reset()
        self.engine_lost.clear()
        self.warn.forget()
        self.client, self.stack = client, stack
        self.live_restore = _live_restore(client)
        self.engine_kind, self.engine_endpoint = _engine_names(client)
        self.needs_up = True
        self.starting = None
        # Deaths and failed starts while the engine was going down were not the hub's doing:
        # bring it back now, not after a crash-loop pause.
        self.backoff.reset()
        self.restart_not_before = 0.0
        return True

    def _engine_answers(self) -> bool:
        try:
            if self.ping is not None:
                return self.ping()
            return self.client is not None and bool(self.client.ping())
        except Exception:  # any failure to answer is "no"
            return False

    def _drop_engine(self, reason: str) -> None:
        if self.engine_endpoint and self.engine_endpoint not in reason:
            reason = f"{reason} (at {self.engine_endpoint})"  # every engine error names it
        self.engine_lost.clear()
        if self.client is not None:
            self.warn.warn("engine-lost", "%s; reconnecting", reason)
            # Closing a dead client may fail in many ways; there is nothing to do about it.
            with contextlib.suppress(Exception):
                self.client.close()
        self.client, self.stack, self.starting = None, None, None
        self.state, self.last_error = HubState.DOCKER_UNAVAILABLE, reason
        self.healthy_since = None
        self.next_engine_attempt = self.clock() + self.timing.engine_reconnect_initial_s

    def _keep_stopped(self, stack: Stack) -> None:
        hub = stack.hub.state()
        if hub.running or hub.status == "paused":
            log.info("stopping the hub, as asked")
            stack.down()
        self.state, self.last_error, self.healthy_since = HubState.STOPPED, None, None
        self.starting = None
        self.hub_hung.clear()

    def _keep_running(self, stack: Stack) -> None:
        now = self.clock()
        # The proxy first, whatever the hub's backoff: people's sessions go through it.
        if not self.needs_up and self._keep_proxy(stack):
            return
        if not self.needs_up:
            self._keep_standby(stack)
        if now < self.restart_not_before:
            return  # backing off after a failure
        hub = stack.hub.state()
        if self.needs_up or not hub.exists:
            self._bring_up(stack)
        elif self.restart_requested.is_set() and hub.running:
            log.info("restarting the hub, as asked")
            self.restart_requested.clear()
            self.state, self.healthy_since = HubState.RESTARTING, None
            stack.hub.restart()
            self._begin_start("restart", fresh=True, after_failure=False)
        elif hub.status in ("exited", "dead", "created"):
            if self.starting is not None:
                self._start_failed(
                    f"the hub exited while starting ({hub.status}); its last lines:\n"
                    + stack.hub.log_tail(15)
                )
            else:
                self._restart(stack, f"the hub died ({hub.status})", start_only=True)
        elif hub.status == "paused":
            self._restart(stack, "the hub stopped answering /hub/health")
        elif hub.running and self.starting is not None:
            # A start is watched by its own deadline and frozen check. A hang the monitor
            # reports now comes from a probe begun before the restart: acting on it would
            # restart the new hub half-way through its start.
            self.hub_hung.clear()
            self._check_start(stack, self.starting)
        elif self.hub_hung.is_set():
            self._restart(stack, "the hub stopped answering /hub/health")
        elif hub.running and self._swarm_changed(stack):
            self._bring_up(stack)
        elif hub.running:
            if self.healthy_since is None:
                self._healthy()
            elif (
                self.backoff.failures
                and now - self.healthy_since >= self.timing.restart_stable_after_s
            ):
                log.info("the hub has been stable for %.0f s", now - self.healthy_since)
                self.backoff.reset()
                self.proxy_backoff.reset()
                self.standby_backoff.reset()
                self.warn.forget()  # the next restart is news to the owner again

    def _swarm_changed(self, stack: Stack) -> bool:
        """Whether the engine became a Swarm manager or stopped being one since the last
        look: the hub's settings and the gate's policy follow (an `up` recreates both)."""
        now = stack.swarm_node_id()
        before, self.swarm_node = self.swarm_node, now
        if before is _UNSEEN or before == now:
            return False
        log.info(
            "this engine %s: bringing the stack up again",
            "is now a Swarm manager" if now else "left the Swarm",
        )
        return True

    def _keep_proxy(self, stack: Stack) -> bool:
        """Bring back a dead or hung front or proxy; True when it did (this pass is then
        done).

        They come first: the hub's probe goes through them, so while either is down the
        hub's health says nothing. The front (which holds the port) is told from the proxy
        by asking the proxy past it.
        """
        front, proxy = stack.front.state(), stack.proxy.state()
        part = "proxy"
        dead = ("exited", "dead", "created")
        if not front.exists:
            reason, how = "the front container is gone", "up"
        elif not proxy.exists:
            reason, how = "the proxy container is gone", "up"
        elif front.status in dead:
            part, reason, how = "front", f"the front died ({front.status})", "start"
        elif proxy.status in dead:
            reason, how = f"the proxy died ({proxy.status})", "start"
        elif front.status == "paused":
            part, reason, how = "front", "the front stopped answering", "restart"
        elif proxy.status == "paused":
            reason, how = "the proxy stopped answering", "restart"
        elif self.proxy_hung.is_set():
            part = stack.hung_part()
            reason, how = f"the {part} stopped answering", "restart"
        else:
            return False
        if self.clock() < self.proxy_not_before:
            return True  # a crash-looping proxy: backing off
        # Not `running` meanwhile: the monitor's probes would only see the outage again.
        self.state, self.healthy_since = HubState.RESTARTING, None
        self.proxy_hung.clear()
        self.hub_hung.clear()
        self.restart_count += 1
        self.warn.warn(
            "proxy:" + reason, "%s: restarting it (restart #%d)", reason, self.restart_count
        )
        try:
            if how == "up":
                self._bring_up(stack)
            elif part == "front":
                stack.recover_front(restart=how == "restart")
            else:
                stack.recover_proxy(restart=how == "restart")
        except HubUnhealthy as exc:
            self.proxy_not_before = self.clock() + max(
                self.proxy_backoff.next_delay(), self.timing.restart_backoff_initial_s
            )
            self._failed(str(exc), counted=True)
            return True
        self.proxy_not_before = self.clock() + self.proxy_backoff.next_delay()
        self.proxy_hung.clear()  # what the probes saw during the outage is over
        if how != "up":
            # The hub may have been on its way back when the proxy went: running is only
            # running once it answers, which the next passes watch.
            if stack.hub.is_healthy():
                self._healthy()
            else:
                self._begin_start("the proxy came back", fresh=True, after_failure=False)
        return True

    def _keep_standby(self, stack: Stack) -> None:
        """Bring a missing, dead or paused standby proxy back. Nobody is cut off while it is
        away (the proxy serves), so this is no outage: the hub's state stays as it is, and a
        standby that will not start is retried after the backoff."""
        standby = stack.standby.state()
        if standby.running or self.clock() < self.standby_not_before:
            return
        reason = (
            "the standby proxy is gone"
            if not standby.exists
            else f"the standby proxy is {standby.status}"
        )
        self.warn.warn("standby:" + reason, "%s: bringing it back", reason)
        try:
            stack.recover_standby()
        except (HubUnhealthy, StackError, DockerException) as exc:
            log.warning("the standby proxy did not come back: %s", exc)
            self.standby_not_before = self.clock() + max(
                self.standby_backoff.next_delay(), self.timing.restart_backoff_initial_s
            )
            return
        self.standby_not_before = self.clock() + self.standby_backoff.next_delay()

    def _bring_up(self, stack: Stack) -> None:
        if self.state != HubState.FAILING:
            self.state = HubState.STARTING
        recreate, after_failure = self.recreate_hub, self.backoff.failures > 0
        try:
            result = stack.up(wait=False, recreate=recreate)
        except StackError:
            # The container would not start (its network removed by hand, say): next time,
            # a new one.
            self.recreate_hub = True
            raise
        self.needs_up = self.recreate_hub = False
        self.swarm_node = _UNSEEN  # up() has just followed the engine's Swarm role
        self.proxy_hung.clear()  # up() has just made sure of the proxy
        self.restart_requested.clear()  # whatever was asked, this start is it
        self._set_image_problems(result.image_problems)
        self._begin_start(
            "start", fresh=result.hub_action != "unchanged", after_failure=after_failure
        )

    def _set_image_problems(self, problems: list[str]) -> None:
        for problem in problems:
            if problem not in self.image_problems:
                log.warning("%s; the hub runs, but servers with this image cannot start", problem)
        self.image_problems = list(problems)

    def _begin_start(
        self, reason: str, *, fresh: bool, after_failure: bool, counted: bool = False
    ) -> None:
        """Watch a hub come up without blocking the loop. A hub started just now may need
        the whole ready deadline (a first start migrates its database); one that was already
        running gets only the hang budget: a frozen hub found at start-up, after an engine
        reconnect or a reload is killed within seconds, not after minutes."""
        now = self.clock()
        allowed = self.timing.hub_ready_deadline_s if fresh else hang_budget_s(self.timing)
        self.starting = HubStart(
            since=now,
            deadline=now + allowed,
            reason=reason,
            after_failure=after_failure,
            counted=counted,
        )
        self.healthy_since = None
        self.hub_hung.clear()

    def _check_start(self, stack: Stack, start: HubStart) -> None:
        now = self.clock()
        if stack.hub.is_healthy():
            if start.after_failure:
                # It came back, but a next death so soon is a crash loop in the making: pace it.
                self.restart_not_before = now + self.backoff.next_delay()
            self._healthy()
            return
        if now >= start.next_frozen_check:
            start.next_frozen_check = now + self.timing.hub_frozen_check_s
            if stack.hub.frozen():
                self._start_failed("the hub is frozen (its process is stopped)")
                return
        if now >= start.deadline:
            self._start_failed(
                f"the hub did not answer {stack.hub.health_url} within "
                f"{start.deadline - start.since:.0f} s; see `hubd logs`"
            )

    def _start_failed(self, reason: str) -> None:
        start, self.starting = self.starting, None
        # Whatever broke this start may be in the container itself (its network removed by
        # hand, files deleted, a stopped process): the next attempt starts from a new one.
        self.needs_up = self.recreate_hub = True
        self._failed(reason, counted=start is not None and start.counted)

    def _restart(self, stack: Stack, reason: str, start_only: bool = False) -> None:
        self.healthy_since = None
        self.restart_count += 1
        self.last_error = reason
        self.state = (
            HubState.RESTARTING
            if self.backoff.failures + 1 < self.timing.failing_after_restarts
            else HubState.FAILING
        )
        self.warn.warn(
            "restart:" + reason, "%s: restarting it (restart #%d)", reason, self.restart_count
        )
        self.restart_requested.clear()  # this restart is the one asked for
        self._begin_start(reason, fresh=True, after_failure=True, counted=True)
        try:
            if start_only:
                stack.hub.start()
            else:
                stack.hub.restart(graceful=False)
        except StackError as exc:
            self._start_failed(str(exc))

    def _failed(self, reason: str, counted: bool = False) -> None:
        self.healthy_since = None
        self.starting = None
        if not counted:
            self.restart_count += 1
        if self.desired.value == HubState.RUNNING:
            # A failed start or restart: the next attempt brings the whole stack up again.
            self.needs_up = True
        delay = self.backoff.next_delay()
        self.restart_not_before = self.clock() + max(delay, self.timing.restart_backoff_initial_s)
        self.last_error = reason
        self.state = (
            HubState.FAILING
            if self.backoff.failures >= self.timing.failing_after_restarts
            else HubState.RESTARTING
        )
        self.warn.warn(
            "failed:" + reason.splitlines()[0],
            "%s (next try in %.1f s)",
            reason.splitlines()[0],
            self.restart_not_before - self.clock(),
        )

    def _healthy(self) -> None:
        if self.state != HubState.RUNNING:
            log.info("the hub is up at %s", self.stack.local_url if self.stack else "?")
        self.state = HubState.RUNNING
        self.last_error = None
        self.healthy_since = self.clock()
        self.starting = None
        self.hub_hung.clear()
        if not self.admin_hint_given and self.stack is not None:
            self.admin_hint_given = True
            self._hint_first_admin(self.stack)

    def _hint_first_admin(self, stack: Stack) -> None:
        from hubd.stack.accounts import first_admin_hint

        try:
            hint = first_admin_hint(stack)
            if hint is not None:
                log.warning("%s", hint)
        except HubdError as exc:
            log.debug("could not check for an admin: %s", exc)

    def exclusive(self, action: Callable[[Stack], T]) -> T:
        """Run `action` on the stack with no pass in between (an upgrade replaces the hub
        container: a pass would see it missing and bring it back on its own)."""
        with self.lock:
            if self.stack is None:
                raise DockerUnavailable(self.last_error or "the Docker engine is not connected")
            try:
                return action(self.stack)
            finally:
                # What the watchers saw during the switch is over; the next pass looks afresh.
                self.hub_hung.clear()
                self.healthy_since = None

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> Supervision:
        # No lock: a pass may hold it for minutes (a first pull), and status must answer now.
        state, last_error = self.state, self.last_error
        if self.engine_lost.is_set() and self.client is not None:
            # The watchers saw the engine go; the loop may still be stuck in a call to it.
            state, last_error = HubState.DOCKER_UNAVAILABLE, "the Docker engine is not answering"
        return Supervision(
            state=state,
            desired=self.desired.value,
            restart_count=self.restart_count,
            last_error=last_error,
            image_problems=tuple(self.image_problems),
            engine=EngineView(
                live_restore=self.live_restore,
                kind=self.engine_kind,
                endpoint=self.engine_endpoint,
            ),
        )


def _live_restore(client: docker.DockerClient) -> bool | None:
    """Whether the engine runs with `live-restore` (containers outlive a restart of dockerd).
    Read only: hubd never changes the engine's configuration."""
    try:
        return bool(client.info().get("LiveRestoreEnabled"))
    except Exception:  # an old or odd engine: unknown, not a reason to fail
        return None


def _engine_names(client: docker.DockerClient) -> tuple[str | None, str | None]:
    """The engine's kind and endpoint, as `hubd status` shows them."""
    try:
        engine = engine_of(client)
    except Exception:  # a test's stand-in client: not known
        return None, None
    return engine.kind, engine.endpoint.describe()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
