"""The control API's view of the daemon: one handler per operation of
`hubd.control.routes.ROUTES`, acting through the daemon's supervisor, stack and runners.
Moved out of daemon.py as it was; daemon.py builds it with the Daemon it serves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubd import __version__
from hubd._daemon.logstreams import HubLogStream, LogFileStream
from hubd._daemon.supervisor import ENGINE_ERRORS, Supervisor
from hubd.control import ControlBackend
from hubd.control.routes import Stream
from hubd.errors import DockerUnavailable, HubdError, UsageError
from hubd.paths import log_file_tail
from hubd.stack import Stack
from hubd.stack.accounts import Accounts
from hubd.stack.swarm.move import move_user, plan_move
from hubd.stack.upgrade import UpgradePlan
from hubd.status import HubState, Status, Supervision

if TYPE_CHECKING:
    from hubd.daemon import Daemon

log = logging.getLogger("hubd")

STATUS_ERRORS: tuple[type[BaseException], ...] = (HubdError, *ENGINE_ERRORS)


class DaemonBackend(ControlBackend):
    """The control API's view of the daemon: the handlers of `hubd.control.routes.ROUTES`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    @property
    def supervisor(self) -> Supervisor:
        return self.daemon.supervisor

    def _stack(self) -> Stack:
        stack = self.supervisor.stack
        if stack is None:
            raise DockerUnavailable(
                self.supervisor.last_error or "the Docker engine is not connected"
            )
        return stack

    def status(self) -> Status:
        snapshot = self.supervisor.snapshot()
        stack, view = self.supervisor.stack, None
        # An engine known to be away is not asked: status answers now, not after a timeout.
        if stack is not None and snapshot.state != HubState.DOCKER_UNAVAILABLE:
            try:
                view = stack.describe(healthy=snapshot.state == HubState.RUNNING)
            except STATUS_ERRORS as exc:
                log.debug("status: could not describe the stack: %s", exc)
        config = self.daemon.config
        return Status.compose(
            snapshot,
            config,
            view,
            self.daemon.advertising.status(),
            __version__,
            self.daemon.upgrades.update,
            backup=self.daemon.backups.status(config),
        )

    def _act(self, desired: HubState | None = None, restart: bool = False) -> Supervision:
        if desired is not None:
            self.supervisor.set_desired(desired)
        if restart:
            self.supervisor.set_desired(HubState.RUNNING)
            self.supervisor.restart_requested.set()
        self.daemon.wake.wake()
        return self.supervisor.snapshot()

    def start(self) -> Supervision:
        return self._act(HubState.RUNNING)

    def stop(self) -> Supervision:
        return self._act(HubState.STOPPED)

    def restart(self) -> Supervision:
        return self._act(restart=True)

    def logs(self, tail: int) -> list[str]:
        return list(self._stack().hub.log_tail(tail).splitlines())

    def daemon_logs(self, tail: int) -> list[str]:
        return log_file_tail(self.daemon.paths.log_file, tail)

    def follow_logs(self, tail: int) -> Stream:
        self._stack()  # no engine: refused now, with the supervisor's reason
        poll_s = self.daemon.timing.hub_log_follow_poll_s
        supervisor = self.supervisor
        return HubLogStream(
            lambda: supervisor.stack,
            tail,
            poll_s,
            hub_wanted=lambda: supervisor.desired.value == HubState.RUNNING,
        )

    def follow_daemon_logs(self, tail: int) -> Stream:
        timing = self.daemon.timing
        return LogFileStream(self.daemon.paths.log_file, tail, timing.log_file_follow_poll_s)

    def progress(self, since: int) -> dict[str, Any]:
        return self.daemon.progress_feed.since(since)

    def reload_config(self, config_file: str) -> dict[str, Any]:
        """As SIGHUP, and answered once the loop applied it (between two passes)."""
        daemon = self.daemon
        if _same_file(Path(config_file), daemon.config_file) is False:
            raise UsageError(
                f"the running hubd reads {daemon.config_file}, not {config_file}: change that "
                "one (`hubd --config FILE config set ...`)"
            )
        with daemon.reloaded:
            before = daemon.reload_count
            daemon.reload_requested = True
            daemon.wake.wake()
            done = daemon.reloaded.wait_for(
                lambda: daemon.reload_count > before, daemon.timing.config_reload_wait_s
            )
            notes = list(daemon.reload_notes)
        if not done:
            notes = ["the daemon is busy (a long pass): it applies the change after it"]
        return {"config_file": str(daemon.config_file), "notes": notes}

    def list_users(self) -> list[dict[str, Any]]:
        return Accounts(self._stack()).list_users()

    def add_user(
        self, name: str, password: str, admin: bool, node: str | None = None
    ) -> dict[str, Any]:
        return Accounts(self._stack()).add_user(name, password, admin, node=node)

    def remove_user(self, name: str, delete_data: bool) -> dict[str, Any]:
        return Accounts(self._stack()).remove_user(name, delete_data)

    def upgrade_plan(self, pull: bool) -> dict[str, Any]:
        return self.daemon.upgrades.plan(pull).to_json()

    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = UpgradePlan.from_json(plan)
        except (KeyError, TypeError, ValueError):
            raise UsageError("the upgrade plan sent to hubd is malformed") from None
        result = self.daemon.upgrades.apply(wanted)
        return {"changes": result.changes, "database_copy": result.database_copy}

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        return Accounts(self._stack()).set_password(name, password)

    def unlock_user(self, name: str) -> dict[str, Any]:
        return Accounts(self._stack()).unlock_user(name)

    def backup(self, target: str | None) -> dict[str, Any]:
        return self.daemon.backups.run_now(self.daemon.config, target)

    # -- the machines of the hub's Swarm (`hubd node`)

    def list_nodes(self) -> list[dict[str, Any]]:
        return [node.to_json() for node in self._stack().nodes.views()]

    def add_node(self, advertise_addr: str | None) -> dict[str, Any]:
        result = self._stack().nodes.add(advertise_addr)
        if result.created:
            # The hub's settings and the gate's policy follow the engine's new Swarm role:
            # the loop brings the stack up again now, not at its next periodic pass.
            self.supervisor.up_requested.set()
            self.daemon.wake.wake()
        return dict(result.to_json())

    def remove_node(self, node: str) -> dict[str, Any]:
        return dict(self._stack().nodes.remove(node))

    def label_node(self, node: str, label: str, remove: bool) -> dict[str, Any]:
        return dict(self._stack().nodes.label(node, label, remove))

    def move_user(self, name: str, to: str, stop_server: bool, dry_run: bool) -> dict[str, Any]:
        if dry_run:
            return plan_move(self._stack(), name, to)
        # With no reconcile pass in between: nothing restarts or rewires mid-move.
        return self.supervisor.exclusive(lambda stack: move_user(stack, name, to, stop_server))


def _same_file(a: Path, b: Path) -> bool | None:
    """Whether two paths name one file (None: cannot tell, e.g. neither exists yet)."""
    try:
        return a.samefile(b)
    except OSError:
        return None if not (a.exists() or b.exists()) else a.absolute() == b.absolute()
