"""`hubd run`: the long-running supervisor process.

Brings the stack to the state the owner chose, then keeps it there: engine events for deaths,
health probes for hangs, reconnection when the engine goes away, a control socket for the CLI
and the tray, mDNS while the hub is meant to run (_daemon/advertising.py), an HTTPS leaf that
keeps fitting (_daemon/tls_refresh.py), and systemd's notify protocol.

Signal handlers only set flags; the loop acts on them. SIGTERM/SIGINT: graceful shutdown with
a deadline, a second signal forces it. SIGHUP: reload the config and apply what changed.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import docker
from docker.errors import DockerException

from hubd import __version__
from hubd._daemon.advertising import Advertising, https_port_of
from hubd._daemon.backend import DaemonBackend
from hubd._daemon.claim import SupervisorClaim
from hubd._daemon.node_watch import NodeWatch
from hubd._daemon.sdnotify import Heartbeat, Notifier
from hubd._daemon.stopguard import ShutdownRequested, StopGuard
from hubd._daemon.supervisor import DesiredState, Supervisor
from hubd._daemon.tls_refresh import TlsRefresh
from hubd._daemon.upgrades import Upgrades
from hubd._daemon.watchdog_reporter import WatchdogReporter
from hubd._daemon.watchers import EventWatcher, Monitor
from hubd.backup.scheduler import BackupScheduler
from hubd.config import Config, load_config
from hubd.control import ControlServer
from hubd.errors import HubdError
from hubd.paths import Paths
from hubd.stack import Stack
from hubd.stack.engine import client_for, connect, engine_of, resolve_endpoint
from hubd.stack.naming import StackNames
from hubd.stack.pins import PinStore
from hubd.stack.progress import ProgressFeed, Reporter
from hubd.status import HubState
from hubd.timing import Timing
from hubd.wakeup import Wakeup

log = logging.getLogger("hubd")

LOG_FILE_BYTES = 1_000_000
LOG_FILE_COUNT = 3


class Daemon:
    def __init__(
        self,
        paths: Paths,
        config_file: Path,
        config: Config,
        timing: Timing,
        notifier: Notifier | None = None,
    ) -> None:
        self.paths = paths
        self.config_file = config_file  # read again on SIGHUP
        self.config = config
        self.timing = timing
        self.notifier = notifier or Notifier()
        # Ends the loop's wait: other threads wake() it, signals through the wakeup fd.
        self.wake = Wakeup()
        self._previous_signals: dict[int, Any] = {}
        self._previous_wakeup_fd: int | None = None
        self.stop_requested = 0  # number of SIGTERM/SIGINT seen
        self.reload_requested = False
        # Reloads asked for over the control socket wait for the loop to have done one.
        self.reloaded = threading.Condition()
        self.reload_count = 0
        self.reload_notes: list[str] = []
        self.heartbeat = Heartbeat(self.notifier)
        self.guard = StopGuard(
            lambda: self.stop_requested,
            self.timing.shutdown_grace_s,
            poll_s=self.timing.shutdown_deadline_poll_s,
            idle_poll_s=self.timing.stop_signal_poll_s,
        )
        # What `hubd up` through the control socket shows: the steps, builds and pulls.
        self.progress_feed = ProgressFeed()
        self.reporter = WatchdogReporter(
            self.notifier, self.timing, self.heartbeat, self.guard, self.progress_feed
        )
        self.supervisor = Supervisor(
            self.config,
            DesiredState(paths.desired_state_file),
            self.timing,
            connect=self._connect_engine,
            reporter=self.reporter,
            make_stack=self._make_stack,
            ping=self._ping_engine,
        )
        self.supervisor.on_engine_connected = self._engine_connected
        self.upgrades = Upgrades(self.config, paths, self.timing, self.supervisor, self.wake.wake)
        self.events = EventWatcher(
            StackNames(self.config.stack_name),
            on_event=self._hub_event,
            on_stream_end=self._engine_gone,
        )
        self.monitor = Monitor(
            self.timing,
            ping=self._ping,
            probe=self._probe,
            on_engine_lost=self._engine_gone,
            on_hub_hung=self._hub_hung,
            probe_proxy=self._probe_proxy,
            on_proxy_hung=self._proxy_hung,
        )
        self.node_watch = NodeWatch(self.timing)
        self.backups = BackupScheduler(
            paths.state_dir,
            config_file,
            self.timing,
            stack=lambda: self.supervisor.stack,
            wake=self.wake.wake,
        )
        self.advertising = Advertising(self.config, self.timing, self.supervisor.warn)
        self.tls = TlsRefresh(
            self.timing,
            stack=lambda: self.supervisor.stack,
            lock=self.supervisor.lock,
            warn=self.supervisor.warn,
            mdns_hostname=self.advertising.hostname,
        )
        self.control: ControlServer | None = None
        self._pinger: docker.DockerClient | None = None
        self.claim = SupervisorClaim(self.config.stack_name)
        self._closed = False

    # ------------------------------------------------------------------ watchers' callbacks

    def _connect_engine(self) -> docker.DockerClient:
        return connect(
            self.timing.engine_call_timeout_s, ping_timeout=self.timing.engine_ping_timeout_s
        )

    def _make_stack(
        self, client: docker.DockerClient, config: Config, *, reporter: Reporter, timing: Timing
    ) -> Stack:
        pins = PinStore(self.paths.image_pins_file, config.stack_name)
        return Stack(
            client,
            config,
            reporter=reporter,
            timing=timing,
            pins=pins,
            state_dir=self.paths.state_dir,
        )

    def _engine_connected(self, client: docker.DockerClient) -> None:
        # A client of its own with a short timeout: a hung engine must fail the ping quickly.
        old, self._pinger = (
            self._pinger,
            client_for(engine_of(client).endpoint, self._ping_timeout()),
        )
        if old is not None:
            old.close()
        self.events.names = StackNames(self.supervisor.config.stack_name)
        self.events.follow(client)

    def _ping_timeout(self) -> int:
        return int(max(1, self.timing.engine_ping_timeout_s))

    def _engine_gone(self) -> None:
        if self.supervisor.client is not None:
            self.supervisor.engine_lost.set()
            self.wake.wake()

    def _hub_event(self, action: str) -> None:
        if action in ("die", "oom", "kill", "stop", "pause", "destroy"):
            self.wake.wake()

    def _hub_hung(self) -> None:
        self.supervisor.hub_hung.set()
        self.wake.wake()

    def _proxy_hung(self) -> None:
        self.supervisor.proxy_hung.set()
        self.wake.wake()

    def _ping(self) -> bool:
        if self._pinger is None or self.supervisor.client is None:
            return True  # nothing connected: the loop is already reconnecting
        return self._ping_engine()

    def _ping_engine(self) -> bool:
        pinger = self._pinger
        if pinger is None:
            return False
        try:
            return bool(pinger.ping())
        except Exception:  # requests, urllib3, socket and SDK errors all mean "no answer"
            return False

    def _probe(self) -> bool | None:
        stack = self.supervisor.stack
        # A starting hub is watched by the pass itself (HubStart), with its own deadline.
        if stack is None or self.supervisor.state != HubState.RUNNING or self.supervisor.starting:
            return None
        return stack.hub.is_healthy(self.timing.health_timeout_s)

    def _probe_proxy(self) -> bool | None:
        stack = self.supervisor.stack
        if stack is None or self.supervisor.state != HubState.RUNNING:
            return None
        return stack.proxy.is_healthy(self.timing.health_timeout_s)

    # ------------------------------------------------------------------ signals

    # Only flags: the interpreter's own handler has already woken the loop (the wakeup fd).

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested += 1

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested = True

    def install_signal_handlers(self) -> None:
        """Until close(), which puts the previous handlers and wakeup fd back."""
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self.wake.write_fd, warn_on_full_buffer=False
        )
        for signum, handler in (
            (signal.SIGTERM, self._on_stop_signal),
            (signal.SIGINT, self._on_stop_signal),
            (signal.SIGHUP, self._on_hup),
        ):
            self._previous_signals[signum] = signal.signal(signum, handler)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_signals.items():
            signal.signal(signum, handler)
        self._previous_signals.clear()
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        # Before anything is touched: a second supervisor of the same stack only refuses.
        self.claim.acquire()
        self.control = ControlServer(
            self.paths.control_socket,
            DaemonBackend(self),
            group=self.config.control_group,
            timing=self.timing,
        )
        self.control.start()
        self.guard.start()
        self.monitor.start()
        self.heartbeat.start()
        log.info(
            "hubd %s supervising stack '%s' (control socket %s)",
            __version__,
            self.config.stack_name,
            self.paths.control_socket,
        )
        try:
            self._loop()
        except ShutdownRequested:
            log.info("stop signal during a long pass: leaving it unfinished")
        return self.shutdown()

    def _loop(self) -> None:
        first = True
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                notes = self._reload()
                with self.reloaded:
                    self.reload_notes = notes
                    self.reload_count += 1
                    self.reloaded.notify_all()
            self.supervisor.reconcile_once()
            self.advertising.sync_once(
                self.supervisor.desired.value == HubState.RUNNING,
                https_port_of(self.supervisor.stack),
            )
            self.tls.tick()
            self.upgrades.maybe_start()
            self.heartbeat.beat()
            if first:
                first = False
                self.reporter.starting = False
                self.notifier.ready(self._status_line())
            else:
                self.notifier.status(self._status_line())
            with self.supervisor.lock:  # not during a move, an upgrade or a pass
                nodes_next_s = self.node_watch.tick(
                    self.supervisor.stack, self.supervisor.snapshot().state == HubState.RUNNING
                )
            timeout = min(
                self.supervisor.next_wakeup_s(), self.backups.tick(self.config), nodes_next_s
            )
            if self.heartbeat.interval_s:
                timeout = min(timeout, self.heartbeat.interval_s / 2)
            self.wake.wait(timeout)
            self.wake.drain()

    def _status_line(self) -> str:
        snap = self.supervisor.snapshot()
        return snap.state + (f": {snap.last_error}" if snap.last_error else "")

    def _reload(self) -> list[str]:
        """Apply the config file again; what could not be applied, as lines for a person."""
        notes: list[str] = []
        try:
            config = load_config(self.config_file)
        except HubdError as exc:
            log.error("config not reloaded: %s", exc)
            return [f"config not reloaded: {exc}"]
        if config.stack_name != self.config.stack_name:
            notes.append("stack_name takes a restart of hubd (e.g. `systemctl restart hubd`)")
        config = self._keys_needing_a_restart(config)
        if config.control_group != self.config.control_group and self.control is not None:
            try:
                self.control.set_group(config.control_group)
                log.info("control socket now open to group %s", config.control_group or "-")
            except HubdError as exc:
                log.error("%s; keeping the control socket as it was", exc)
                notes.append(f"{exc}; keeping the control socket as it was")
                config = dataclasses.replace(config, control_group=self.config.control_group)
        self.config = config
        self.supervisor.reload(config)
        self.upgrades.reload(config)
        self.advertising.reload(config)
        log.info("config reloaded from %s", self.config_file)
        return notes

    def _keys_needing_a_restart(self, config: Config) -> Config:
        """A new `stack_name` means another set of containers: moving to it while running
        would leave the old hub unsupervised on the same port. Say so and keep the old one."""
        if config.stack_name != self.config.stack_name:
            log.error(
                "stack_name changed from %r to %r: this takes a restart of hubd "
                "(e.g. `systemctl restart hubd`); until then hubd keeps supervising %r",
                self.config.stack_name,
                config.stack_name,
                self.config.stack_name,
            )
            config = dataclasses.replace(config, stack_name=self.config.stack_name)
        return config

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> int:
        """Graceful, within `shutdown_grace_s`: the stop guard forces the exit when the grace
        period passes or a second signal arrives."""
        self.notifier.stopping()
        log.info("shutting down")
        self.close()
        log.info("stopped")
        self.guard.done()
        return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.heartbeat.close()
        self.monitor.close()
        self.events.close()
        self.backups.close()
        if self.control is not None:
            self.control.close()
        self.advertising.close()
        stack = self.supervisor.stack
        if self.config.stop_on_exit and stack is not None:
            log.info("stop_on_exit is set: stopping the hub")
            try:
                stack.down()
            except (HubdError, DockerException) as exc:
                log.error("could not stop the hub: %s", exc)
        self.claim.release()
        self._restore_signal_handlers()  # no signal may write to the pair once closed
        self.wake.close()


def _log_to_file(paths: Paths) -> None:
    """Also keep a rotating log file, which the tray's "Open logs" shows."""
    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            paths.log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT
        )
    except OSError as exc:
        log.debug("no log file: %s", exc)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def run_daemon(paths: Paths, config_file: Path, config: Config, timing: Timing) -> int:
    """Run until SIGTERM/SIGINT. The caller has loaded the config: a bad one fails before
    anything starts."""
    # A DOCKER_HOST, context or Docker CLI config naming no usable engine is bad input: one
    # line and exit 78 (no restarts by systemd/launchd), not a daemon retrying forever.
    resolve_endpoint()
    _log_to_file(paths)
    daemon = Daemon(paths, config_file, config, timing)
    daemon.install_signal_handlers()
    try:
        return daemon.run()
    finally:
        daemon.close()
