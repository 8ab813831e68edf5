"""A running daemon's progress, shown on this terminal while it works for a command.

`hubd up` and `hubd upgrade` through the daemon show the steps, build lines and pull progress
bars the daemon reports on its `progress` route (a numbered feed, asked again with the next
number), with this terminal's own reporter: the same as the command shows without a daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hubd.errors import UsageError

if TYPE_CHECKING:
    from hubd.control.client import ControlClient
    from hubd.stack.progress import Reporter

T = TypeVar("T")


class DaemonProgress:
    """The daemon's feed from now on (not what earlier work reported), replayed on demand."""

    def __init__(self, daemon: ControlClient, reporter: Reporter) -> None:
        from hubd.stack.progress import FeedReplay

        self.daemon = daemon
        self.replay = FeedReplay(reporter)
        try:
            # Past the end: the answer's `next` is where this command's entries begin.
            self.since: int | None = int(daemon.progress(since=1 << 62)["next"])
        except UsageError:  # a daemon from before `progress` (not restarted since an update)
            self.since = None

    def show(self) -> None:
        """Show what the daemon reported since the last call."""
        if self.since is None:
            return
        answer = self.daemon.progress(since=self.since)
        for entry in answer["entries"]:
            self.replay.show(entry)
        self.since = int(answer["next"])

    def close(self) -> None:
        self.replay.close()


def while_showing(
    daemon: ControlClient, reporter: Reporter, poll_s: float, request: Callable[[], T]
) -> T:
    """`request()` (one long control request) on a thread of its own, while this thread shows
    the daemon's progress every `poll_s`; its answer or its error, once it is done.

    The request runs on the helper thread so that Ctrl-C reaches this one at once (the daemon
    goes on with the work; `hubd status` tells how it went)."""
    progress = DaemonProgress(daemon, reporter)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = request()
        except BaseException as exc:  # handed to the main thread, raised there
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="hubd-request", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            progress.show()
            worker.join(poll_s)
        progress.show()  # the last entries, reported just before the answer
    finally:
        progress.close()
    if "error" in outcome:
        raise outcome["error"]
    answer: T = outcome["answer"]
    return answer
