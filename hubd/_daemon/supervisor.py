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
from pathlib import Path
from typing import TypeVar

import docker
import requests
from docker.errors import DockerException

from hubd._daemon.backoff import Backoff
from hubd.config import Config
from hubd.errors import DockerPermissionDenied, DockerUnavailable, HubdError, HubUnhealthy
from hubd.logsafe import WarnOnce
from hubd.stack import Stack
from hubd.stack.progress import Reporter
from hubd.status import DESIRED_STATES, HubState, Supervision
from hubd.timing import Timing

log = logging.getLogger("hubd._daemon.supervisor")
T = TypeVar("T")


class DesiredState:
    """What the owner asked for, kept on disk so a reboot returns to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = self._load()

    def _load(self) -> HubState:
        try:
            value = json.loads(self.path.read_text()).get("desired")
        except (OSError, ValueError, AttributeError):
            return HubState.RUNNING
        return HubState(value) if value in DESIRED_STATES else HubState.RUNNING

    def set(self, value: HubState) -> None:
        self.value = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"desired": value.value}) + "\n")
        tmp.replace(self.path)


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
    ) -> None:
        self.config = config
        self.desired = desired
        self.timing = timing
        self.connect = connect
        self.reporter = reporter
        self.clock = clock
        self.make_stack = make_stack
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
        self.next_engine_attempt = 0.0
        self.restart_not_before = 0.0
        self.healthy_since: float | None = None
        self.needs_up = True
        self.admin_hint_given = False

        # Set by watchers, read and cleared by reconcile_once.
        self.hub_hung = threading.Event()
        self.engine_lost = threading.Event()
        self.restart_requested = threading.Event()
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
            try:
                if self.desired.value == HubState.STOPPED:
                    self._keep_stopped(self.stack)
                else:
                    self._keep_running(self.stack)
            except (DockerUnavailable, DockerPermissionDenied) as exc:
                self._drop_engine(str(exc))
            except (requests.exceptions.ConnectionError, DockerException) as exc:
                if self._engine_answers():
                    self._failed(f"Docker refused an operation: {exc}")
                else:
                    self._drop_engine(f"the Docker engine stopped answering ({exc})")
            except HubdError as exc:
                self._failed(str(exc))

    def _connect(self) -> bool:
        if self.clock() < self.next_engine_attempt:
            return False
        try:
            client = self.connect()
        except HubdError as exc:
            delay = self.engine_backoff.next_delay() or self.timing.engine_reconnect_initial_s
            self.next_engine_attempt = self.clock() + delay
            self.state, self.last_error = HubState.DOCKER_UNAVAILABLE, str(exc)
            self.warn.warn("engine:" + type(exc).__name__, "%s (retrying)", exc)
            return False
        if self.engine_backoff.failures:
            log.info("the Docker engine is back")
        self.engine_backoff.reset()
        self.warn.forget()
        self.client = client
        self.stack = self.make_stack(
            client, self.config, reporter=self.reporter, timing=self.timing
        )
        self.needs_up = True
        # Deaths and failed starts while the engine was going down were not the hub's doing:
        # bring it back now, not after a crash-loop pause.
        self.backoff.reset()
        self.restart_not_before = 0.0
        self.on_engine_connected(client)
        return True

    def _engine_answers(self) -> bool:
        try:
            return self.client is not None and bool(self.client.ping())
        except (DockerException, requests.exceptions.RequestException, OSError):
            return False

    def _drop_engine(self, reason: str) -> None:
        self.engine_lost.clear()
        if self.client is not None:
            self.warn.warn("engine-lost", "%s; reconnecting", reason)
            # Closing a dead client may fail in many ways; there is nothing to do about it.
            with contextlib.suppress(Exception):
                self.client.close()
        self.client, self.stack = None, None
        self.state, self.last_error = HubState.DOCKER_UNAVAILABLE, reason
        self.healthy_since = None
        self.next_engine_attempt = self.clock() + self.timing.engine_reconnect_initial_s

    def _keep_stopped(self, stack: Stack) -> None:
        hub = stack.hub_state()
        if hub.running or hub.status == "paused":
            log.info("stopping the hub, as asked")
            stack.down()
        self.state, self.last_error, self.healthy_since = HubState.STOPPED, None, None
        self.hub_hung.clear()

    def _keep_running(self, stack: Stack) -> None:
        now = self.clock()
        if now < self.restart_not_before:
            return  # backing off after a failure
        hub = stack.hub_state()
        if self.needs_up or not hub.exists:
            self.state = HubState.STARTING if self.state != HubState.FAILING else self.state
            stack.up()
            self.needs_up = False
            self._healthy()
            return
        if self.restart_requested.is_set() and hub.running:
            self.restart_requested.clear()
            log.info("restarting the hub, as asked")
            self.state, self.healthy_since = HubState.RESTARTING, None
            stack.restart_hub()
            stack.wait_healthy()
            self._healthy()
        elif hub.status in ("exited", "dead", "created"):
            self._restart(stack, f"the hub died ({hub.status})", start_only=True)
        elif hub.status == "paused" or self.hub_hung.is_set():
            self._restart(stack, "the hub stopped answering /hub/health")
        elif hub.running:
            if self.healthy_since is None:
                self._healthy()
            elif (
                self.backoff.failures
                and now - self.healthy_since >= self.timing.restart_stable_after_s
            ):
                log.info("the hub has been stable for %.0f s", now - self.healthy_since)
                self.backoff.reset()

    def _restart(self, stack: Stack, reason: str, start_only: bool = False) -> None:
        self.hub_hung.clear()
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
        try:
            if start_only:
                stack.start_hub()
            else:
                stack.restart_hub(graceful=False)
            stack.wait_healthy()
        except HubUnhealthy as exc:
            self._failed(str(exc), counted=True)
            return
        # It came back, but a next death so soon is a crash loop in the making: pace it.
        self.restart_not_before = self.clock() + self.backoff.next_delay()
        self._healthy()

    def _failed(self, reason: str, counted: bool = False) -> None:
        self.healthy_since = None
        if not counted:
            self.restart_count += 1
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
        return Supervision(
            state=self.state,
            desired=self.desired.value,
            restart_count=self.restart_count,
            last_error=self.last_error,
        )
