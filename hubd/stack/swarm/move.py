"""`hubd user move NAME --to NODE`: a person's files to another node, and their home with them.

Volumes are node-local, so a person's server only starts on the node that holds their volume
(homes.py). Moving them: the same volume (name and labels) is made on the target node, the files
stream from the old one by helper services (move_helper.py), both sides' manifests (every path,
type, mode, owner, size, sha256) must be equal, and only then the home label moves. The old
copy goes last: removed when it is on the manager; on another node, whose engine hubd cannot
reach, it is emptied by a helper there (an empty volume of that name stays, which a later move
back reuses). Before the label moved, any failure leaves the old volume the one in use and
removes (or empties) the half-made copy. Never two copies in use: the person's server must be
stopped, and a server started meanwhile aborts the move.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from docker.errors import APIError, NotFound

from hubd.errors import StackError, UsageError, UserAccountError
from hubd.stack import Stack
from hubd.stack.accounts import check_username
from hubd.stack.hub_image.swarm_placement import node_active, node_ready
from hubd.stack.swarm import move_payload
from hubd.stack.swarm.homes import (
    clear_home,
    home_of,
    local_node_id,
    node_hostname,
    set_home,
    swarm_manager,
)
from hubd.stack.swarm.move_helper import (
    MOUNT_POINT,
    PORT,
    RECEIVER_CAPS,
    SENDER_CAPS,
    MoveHelpers,
    Outcome,
    escaped_username,
)
from hubd.stack.swarm.noderef import resolve_node

log = logging.getLogger(__name__)

# Server states that hold no volume: anything else may be writing to it.
_STOPPED = {"exited", "dead", "complete", "shutdown", "failed", "rejected", "removing"}


@dataclass(frozen=True)
class NodeFacts:
    id: str
    hostname: str
    ready: bool  # the node's engine answers the Swarm
    active: bool  # not drained or paused
    manager: bool  # hubd's own engine: its volumes hubd can remove

    @classmethod
    def of(cls, node: Any, local_id: str) -> NodeFacts:
        attrs = node.attrs
        return cls(
            id=str(node.id),
            hostname=node_hostname(node),
            ready=node_ready(attrs),
            active=node_active(attrs),
            manager=node.id == local_id,
        )


@dataclass(frozen=True)
class MovePlan:
    user: str
    volume: str
    source: NodeFacts
    target: NodeFacts
    server_running: bool
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "volume": self.volume,
            "from": self.source.hostname,
            "to": self.target.hostname,
            "server_running": self.server_running,
            "steps": list(self.steps),
        }


def refusal(
    user: str,
    source: NodeFacts,
    target: NodeFacts,
    server_running: bool,
    stop_server: bool,
) -> str | None:
    """Why this move cannot start now (one line that says what to do), or None."""
    if target.id == source.id:
        return f"{user} already lives on {target.hostname}; nothing to move"
    if not target.ready:
        return f"node {target.hostname} is down (its engine does not answer); bring it back first"
    if not target.active:
        return f"node {target.hostname} is drained (it takes no new servers); make it active first"
    if not source.ready:
        return f"{user}'s files are on node {source.hostname}, which is down; bring it back first"
    if server_running and not stop_server:
        return (
            f"{user}'s server is running: stop it first (File > Hub Control Panel > Stop My "
            "Server), or add --yes to have hubd stop it"
        )
    return None


def plan_steps(
    user: str, volume: str, source: NodeFacts, target: NodeFacts, server_running: bool
) -> list[str]:
    """What the move will do, in order, as the CLI shows it before asking."""
    steps = [f"stop {user}'s server"] if server_running else []
    steps += [
        f"copy volume {volume} from {source.hostname} to {target.hostname}",
        "compare both copies file by file (paths, owners, modes, sizes, sha256)",
        f"make {target.hostname} {user}'s home (their server starts there from now on)",
    ]
    if source.manager:
        steps.append(f"remove the old volume on {source.hostname}")
    else:
        steps.append(f"empty the old volume on {source.hostname}")
    return steps


def compare_manifests(sent: list[list[object]], received: list[list[object]]) -> str | None:
    """None if both sides hold the same tree, else the first difference in one line."""
    ours = {str(entry[0]): entry for entry in sent}
    theirs = {str(entry[0]): entry for entry in received}
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a is None:
            return f"{path!r} appeared on the target"
        if b is None:
            return f"{path!r} is missing on the target"
        if a != b:
            what = ("type", "mode", "owner", "group", "size", "content")
            differ = [name for name, x, y in zip(what, a[1:], b[1:], strict=False) if x != y]
            return f"{path!r} differs on the target ({', '.join(differ)})"
    return None


class Mover:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = stack.client
        self.names = stack.names
        self.timing = stack.timing

    # ------------------------------------------------------------------ plan

    def plan(self, user: str, to: str, stop_server: bool = False) -> MovePlan:
        """What moving `user` to node `to` would do; refuses (raises) what cannot be done."""
        check_username(user)
        if not swarm_manager(self.client):
            raise UsageError(
                "hubd's engine runs no Swarm, so everyone lives on this machine; "
                "add a machine with `hubd node add` first"
            )
        if self.stack.hub_api().get_user(user) is None:
            raise UserAccountError(f"there is no user {user!r}")
        local_id = local_node_id(self.client)
        target = NodeFacts.of(resolve_node(self.client, to), local_id)
        home = self.client.nodes.get(home_of(self.client, self.names, user))
        source = NodeFacts.of(home, local_id)
        running = self._server_active(user)
        problem = refusal(user, source, target, running, stop_server)
        if problem:
            raise UsageError(problem)
        volume = self._volume_name(user, source)
        steps = plan_steps(user, volume, source, target, running)
        return MovePlan(user, volume, source, target, running, steps)

    def _volume_name(self, user: str, source: NodeFacts) -> str:
        if source.manager:
            found = self.stack.user_volumes().get(user)
            if found:
                return found
        return self.names.user_volume(escaped_username(user))

    def _server_active(self, user: str) -> bool:
        return any(
            s.user == user and (s.running or s.status not in _STOPPED)
            for s in self.stack.user_servers()
        )

    # ------------------------------------------------------------------ carry out

    def carry_out(self, plan: MovePlan) -> dict[str, Any]:
        started = time.monotonic()
        report = self.stack.reporter
        helpers = MoveHelpers(
            self.client, self.names, self.stack.config.user_image, plan.user, self.timing
        )
        done: list[str] = []
        helpers.remove_all()  # a killed run's
        if plan.server_running:
            report.step(f"stopping {plan.user}'s server")
            self._stop_server(plan.user)
            done.append(f"stopped {plan.user}'s server")
        if plan.source.manager and plan.volume not in self.stack.user_volumes().values():
            # Never started a server: no files anywhere, only the home moves.
            self._move_label(plan)
            done.append(f"{plan.user} had no files yet; {plan.target.hostname} is their home now")
            return self._result(plan, done, started, files=0, size=0)
        label_moved = False
        target_touched = False
        summary: dict[str, Any] = {}
        try:
            report.step(
                f"copying {plan.user}'s files from {plan.source.hostname} to {plan.target.hostname}"
            )
            sent, received = self._copy(helpers, plan)
            target_touched = received.exit_code != move_payload.EXIT_NOT_EMPTY
            if not sent.ok and sent.exit_code == move_payload.EXIT_NO_SOURCE:
                self._move_label(plan)
                label_moved = True
                done.append(
                    f"{plan.user} had no files on {plan.source.hostname}; "
                    f"{plan.target.hostname} is their home now"
                )
                return self._result(plan, done, started, files=0, size=0)
            summary = self._verify(plan, sent, received)
            done.append(
                f"copied {summary['files']} files ({_size(int(summary['bytes']))}) "
                f"to {plan.target.hostname} and compared them: identical"
            )
            if self._server_active(plan.user):
                raise StackError(
                    f"{plan.user}'s server was started during the move; nothing changed "
                    "(stop it and move again)"
                )
            report.step(f"making {plan.target.hostname} {plan.user}'s home")
            self._move_label(plan)
            label_moved = True
            done.append(f"{plan.target.hostname} is {plan.user}'s home now")
        finally:
            helpers.remove_all()
            if not label_moved and target_touched:
                self._discard_target(helpers, plan)
        report.step(f"removing the old copy on {plan.source.hostname}")
        done.append(self._discard_source(helpers, plan))
        return self._result(
            plan, done, started, files=int(summary["files"]), size=int(summary["bytes"])
        )

    def _copy(self, helpers: MoveHelpers, plan: MovePlan) -> tuple[Outcome, Outcome]:
        deadline = time.monotonic() + self.timing.move_copy_deadline_s
        helpers.create_network()
        receiver = helpers.start(
            "receive",
            plan.target.id,
            ["receive", MOUNT_POINT, str(PORT)],
            helpers.volume_mount(plan.volume, read_only=False),
            RECEIVER_CAPS,
        )
        # The sender starts once the receiver runs: its connect deadline then covers only the
        # receiver's name reaching the sender's node, not a slow start of the receiver's task
        # (on a loaded node it outlasted the deadline, and the sender gave up on the name).
        refused = helpers.wait_running(receiver, plan.target.hostname, deadline)
        if refused is not None:
            return Outcome(plan.source.hostname, "cancelled", None), refused
        sender = helpers.start(
            "send",
            plan.source.id,
            ["send", MOUNT_POINT, helpers.receiver, str(PORT)],
            helpers.volume_mount(plan.volume, read_only=True),
            SENDER_CAPS,
        )
        # Both at once: when one side fails, the other is not waited for (a receiver that
        # refused would leave the sender retrying to connect for minutes).
        started = time.monotonic()
        sent: Outcome | None = None
        received: Outcome | None = None
        while sent is None or received is None:
            if sent is None:
                sent = helpers.poll(sender, plan.source.hostname, started, deadline)
            if received is None:
                received = helpers.poll(receiver, plan.target.hostname, started, deadline)
            if sent is not None and not sent.ok and received is None:
                received = Outcome(plan.target.hostname, "cancelled", None)
            if received is not None and not received.ok and sent is None:
                sent = Outcome(plan.source.hostname, "cancelled", None)
            if sent is None or received is None:
                time.sleep(self.timing.move_helper_poll_s)
        return sent, received

    def _verify(self, plan: MovePlan, sent: Outcome, received: Outcome) -> dict[str, Any]:
        if received.exit_code == move_payload.EXIT_NOT_EMPTY:
            raise StackError(
                f"node {plan.target.hostname} already has a volume {plan.volume} with files in "
                "it (left from before?); remove it there, then move again. Nothing changed"
            )
        if not received.ok and received.state != "cancelled":
            raise StackError(
                f"writing {plan.user}'s files on {plan.target.hostname} failed: "
                f"{received.problem()}; nothing changed"
            )
        if not sent.ok:
            raise StackError(
                f"reading {plan.user}'s files on {plan.source.hostname} failed: "
                f"{sent.problem()}; nothing changed"
            )
        if not received.ok:
            raise StackError(
                f"writing {plan.user}'s files on {plan.target.hostname} failed: "
                f"{received.problem()}; nothing changed"
            )
        ours, theirs = sent.manifest(), received.manifest()
        summary = sent.summary()
        if ours is None or theirs is None or summary is None or received.summary() is None:
            raise StackError("a move helper gave no manifest; nothing changed")
        difference = compare_manifests(ours, theirs)
        if difference is None and summary != received.summary():
            difference = "the manifests' checksums differ"
        if difference is not None:
            raise StackError(
                f"the copy on {plan.target.hostname} is not identical: {difference}; "
                "nothing changed"
            )
        return summary

    def _move_label(self, plan: MovePlan) -> None:
        if plan.target.manager:
            # People without a label live on the manager.
            clear_home(self.client, self.names, plan.user)
        else:
            set_home(self.client, self.names, plan.user, plan.target.id)

    def _discard_target(self, helpers: MoveHelpers, plan: MovePlan) -> None:
        """The half-made copy goes; the old volume stays the one in use."""
        try:
            if plan.target.manager:
                self._remove_local_volume(plan.volume)
            else:
                helpers.run(
                    "wipe",
                    plan.target.id,
                    plan.target.hostname,
                    ["wipe", MOUNT_POINT],
                    helpers.volume_mount(plan.volume, read_only=False),
                )
        except Exception as exc:  # the failure that brought us here is the one to report
            log.warning("move: the partial copy on %s stays: %s", plan.target.hostname, exc)

    def _discard_source(self, helpers: MoveHelpers, plan: MovePlan) -> str:
        if self._server_active(plan.user):
            return f"the old volume on {plan.source.hostname} stays: a server uses it"
        if plan.source.manager:
            try:
                self._remove_local_volume(plan.volume)
            except StackError as exc:
                return f"the old volume {plan.volume} stays on {plan.source.hostname}: {exc}"
            return f"removed the old volume {plan.volume} on {plan.source.hostname}"
        outcome = helpers.run(
            "wipe",
            plan.source.id,
            plan.source.hostname,
            ["wipe", MOUNT_POINT],
            helpers.volume_mount(plan.volume, read_only=False),
        )
        if not outcome.ok:
            return (
                f"the old copy on {plan.source.hostname} could not be emptied "
                f"({outcome.problem()}); it is no longer used"
            )
        return (
            f"emptied the old volume {plan.volume} on {plan.source.hostname} "
            "(only that node's engine can remove it: `docker volume rm` there)"
        )

    def _remove_local_volume(self, name: str) -> None:
        """Removed once the helpers' containers are gone (a moment after their services)."""
        deadline = time.monotonic() + self.timing.move_helper_start_deadline_s
        while True:
            try:
                self.client.volumes.get(name).remove()
                return
            except NotFound:
                return
            except APIError as exc:
                if time.monotonic() > deadline:
                    raise StackError(f"volume {name} is still in use: {exc.explanation}") from None
                time.sleep(self.timing.move_helper_poll_s)

    def _stop_server(self, user: str) -> None:
        """Through the hub, so that it knows; then until the service or container is gone."""
        self.stack.hub_api().stop_server(user)
        deadline = time.monotonic() + self.timing.move_server_stop_deadline_s
        while self._server_active(user):
            if time.monotonic() > deadline:
                raise StackError(f"{user}'s server did not stop; nothing was moved")
            time.sleep(self.timing.move_helper_poll_s)

    def _result(
        self, plan: MovePlan, done: list[str], started: float, files: int, size: int
    ) -> dict[str, Any]:
        return {
            **plan.to_json(),
            "done": done,
            "files": files,
            "bytes": size,
            "seconds": round(time.monotonic() - started, 1),
        }


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def move_user(stack: Stack, user: str, to: str, stop_server: bool) -> dict[str, Any]:
    """Plan and carry out in one (the daemon's and the CLI's entry point)."""
    mover = Mover(stack)
    return mover.carry_out(mover.plan(user, to, stop_server))


def plan_move(stack: Stack, user: str, to: str) -> dict[str, Any]:
    """What a move would do (a running server is not refused here: the CLI asks first)."""
    return Mover(stack).plan(user, to, stop_server=True).to_json()
