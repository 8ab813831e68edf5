"""Turn a sequence of snapshots into the few notifications worth interrupting someone for.

Pure apart from the clock. Told: the hub crashed, it keeps crashing, it is back after a
problem, Docker went away, the daemon went away. Not told: anything the person asked for
(stop, restart from the tray) and the normal start-up path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hubd._tray.state import Snapshot
from hubd.status import HubState, NodeView
from hubd.timing import Timing

_DOWN_AFTER_CRASH = (HubState.RESTARTING, HubState.FAILING)


@dataclass(frozen=True)
class Notice:
    # crash | crash-loop | recovered | docker | daemon-lost | update | upgrade | backup-failed
    # | backup-overdue | node-down | node-back (a machine of the hub's Swarm)
    kind: str
    title: str
    message: str


_DOCKER_GONE = Notice(
    "docker", "Docker is not running", "JupyterHub comes back by itself once Docker is running."
)


def _crash_loop(current: Snapshot) -> Notice:
    reason = current.last_error or "It stops again right after each restart."
    return Notice(
        "crash-loop",
        "JupyterHub keeps crashing",
        f"{reason} hubd keeps trying; open the logs to see why.",
    )


def _update_notices(previous: Snapshot, current: Snapshot) -> list[Notice]:
    """An update found, and an upgrade done or rolled back (by the daemon's maintenance
    window, or by someone else's `hubd upgrade`)."""
    before = previous.status.update if previous.status is not None else None
    now = current.status.update if current.status is not None else None
    if now is None:
        return []
    notices = []
    if now.available and not (before is not None and before.available):
        notices.append(
            Notice(
                "update",
                "Update available",
                "; ".join(now.changes) + ". Choose “Update available” in the menu.",
            )
        )
    if now.last_result and now.last_result != (before.last_result if before else None):
        title = "JupyterHub upgraded" if now.last_ok else "The upgrade did not go through"
        notices.append(Notice("upgrade", title, now.last_result))
    return notices


def _backup_notices(previous: Snapshot | None, current: Snapshot) -> list[Notice]:
    """A backup that failed (each new failure once), and no good backup for too long."""
    before = previous.backup if previous is not None else None
    now = current.backup
    notices = []
    if now.last_error is not None and (before is None or before.last_error != now.last_error):
        notices.append(
            Notice("backup-failed", "Backup failed", f"{now.last_error}. hubd will try again.")
        )
    if now.overdue and (before is None or not before.overdue):
        since = (
            "There has never been a good backup"
            if now.age_s is None
            else (f"The last good backup is {int(now.age_s // 3600)} hours old")
        )
        notices.append(
            Notice(
                "backup-overdue",
                "No recent backup",
                f"{since}. Check the backup disk, then use Back up now.",
            )
        )
    return notices


def _people(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _node_down(node: NodeView) -> Notice:
    if node.homes:
        who = _people(node.homes)
        after = f"{who} cannot use their server until it is back; everyone else carries on."
    else:
        after = "Nobody's files are there; everyone carries on."
    return Notice("node-down", f"{node.hostname} is unreachable", after)


def _node_back(node: NodeView) -> Notice:
    who = f" {_people(node.homes)} can start their servers again." if node.homes else ""
    return Notice("node-back", f"{node.hostname} is back", f"The machine is reachable again.{who}")


class NoticeTracker:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *, timing: Timing) -> None:
        self._clock = clock
        self._expected_restart_window_s = timing.tray_expected_restart_window_s
        self._previous: Snapshot | None = None
        self._problem = False  # a crash or a crash loop was announced and is not over yet
        self._expected_until = 0.0
        self._nodes_down: set[str] = set()  # ids of machines announced as down

    def expect_restart(self) -> None:
        """The tray itself asked for a restart: the coming down-and-up is no crash."""
        self._expected_until = self._clock() + self._expected_restart_window_s

    def update(self, current: Snapshot) -> list[Notice]:
        return self._hub_update(current) + self._node_notices(current)

    def _node_notices(self, current: Snapshot) -> list[Notice]:
        """A machine of the hub's Swarm that went away, and once it is back. Remembered by
        id rather than compared with the last poll: a status without nodes (the daemon away
        for a moment) neither repeats nor ends the episode."""
        notices = []
        for node in current.nodes:
            if node.state == "down" and node.id not in self._nodes_down:
                self._nodes_down.add(node.id)
                notices.append(_node_down(node))
            elif node.ready and node.id in self._nodes_down:
                self._nodes_down.discard(node.id)
                notices.append(_node_back(node))
        if current.nodes:
            # A machine removed from the hub while down is over too.
            self._nodes_down &= {node.id for node in current.nodes}
        return notices

    def _hub_update(self, current: Snapshot) -> list[Notice]:
        previous, self._previous = self._previous, current
        if previous is None:
            return self._first(current)
        before, now = previous.raw_state, current.raw_state
        if now == "unreachable":
            if before == "unreachable":
                return []
            return [
                Notice(
                    "daemon-lost",
                    "hubd stopped",
                    "The tray cannot reach hubd, so nothing looks after JupyterHub "
                    "now. Start hubd again to manage it.",
                )
            ]
        if before == "unreachable":
            # The daemon came back: say only what is wrong now, as at start-up.
            return self._first(current)
        expected = self._clock() < self._expected_until
        if expected and now == HubState.RUNNING and before != HubState.RUNNING:
            self._expected_until = 0.0
        notices: list[Notice] = []
        crashed = not expected and self._crashed(previous, current)
        if now == HubState.FAILING and before != HubState.FAILING:
            self._problem = True
            notices.append(_crash_loop(current))
        elif now == HubState.DOCKER_UNAVAILABLE and before != HubState.DOCKER_UNAVAILABLE:
            self._problem = True
            notices.append(_DOCKER_GONE)
        elif crashed and not self._problem:
            if now == HubState.RUNNING:  # down and up again between two polls
                notices.append(
                    Notice("crash", "JupyterHub crashed", "hubd restarted it; it is running again.")
                )
            else:
                self._problem = True
                notices.append(Notice("crash", "JupyterHub crashed", "hubd is restarting it."))
        if now == HubState.RUNNING and self._problem:
            self._problem = False
            url = current.hub_url
            notices.append(
                Notice(
                    "recovered",
                    "JupyterHub is back",
                    f"It is running again at {url}" if url else "It is running again.",
                )
            )
        elif now == HubState.STOPPED:
            self._problem = False  # a stop, asked for by someone, ends any episode
        return notices + _update_notices(previous, current) + _backup_notices(previous, current)

    def _first(self, current: Snapshot) -> list[Notice]:
        return self._first_state(current) + _backup_notices(None, current)

    def _first_state(self, current: Snapshot) -> list[Notice]:
        state = current.raw_state
        self._problem = state in (HubState.FAILING, HubState.DOCKER_UNAVAILABLE)
        if state == HubState.FAILING:
            return [_crash_loop(current)]
        if state == HubState.DOCKER_UNAVAILABLE:
            return [_DOCKER_GONE]
        return []

    @staticmethod
    def _crashed(previous: Snapshot, current: Snapshot) -> bool:
        before_count, now_count = previous.restart_count, current.restart_count
        if before_count is not None and now_count is not None:
            # The daemon counts unplanned restarts; that also catches a crash and recovery
            # that both fell between two polls.
            return now_count > before_count
        return (
            previous.raw_state == HubState.RUNNING
            and current.raw_state in _DOWN_AFTER_CRASH
            and current.wanted
        )
