"""A daemon's progress shown while it works for `hubd up` / `hubd upgrade` (cli.daemon_progress)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest

from hubd.cli.daemon_progress import DaemonProgress, while_showing
from hubd.control.client import ControlClient
from hubd.errors import StackError, UsageError
from hubd.stack.progress import ProgressFeed


class FeedDaemon:
    """The `progress` route of a daemon, over a real ProgressFeed."""

    def __init__(self, knows_progress: bool = True) -> None:
        self.feed = ProgressFeed()
        self.knows_progress = knows_progress

    def progress(self, since: int) -> dict[str, Any]:
        if not self.knows_progress:
            raise UsageError("no such endpoint: /v1/progress")
        return self.feed.since(since)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def step(self, message: str) -> None:
        self.seen.append(f"step {message}")

    def build_output(self, line: str) -> None:
        self.seen.append(f"build {line}")

    @contextmanager
    def pulling(self, image: str) -> Iterator[Any]:
        self.seen.append(f"pull {image}")
        yield self
        self.seen.append(f"pulled {image}")

    def update(self, event: dict[str, Any]) -> None:
        self.seen.append(f"bytes {event.get('progressDetail', {}).get('current', 'done')}")


def _client(daemon: FeedDaemon) -> ControlClient:
    return cast(ControlClient, daemon)


def test_the_work_s_progress_is_shown_in_order_and_nothing_from_before() -> None:
    daemon, shown = FeedDaemon(), Recorder()
    daemon.feed.add({"step": "an earlier pass"})
    halfway, go_on = threading.Event(), threading.Event()

    def upgrade() -> dict[str, Any]:
        daemon.feed.add({"pull": "hub:2", "done": 0, "total": 0})
        daemon.feed.add({"pull": "hub:2", "done": 5, "total": 10})
        halfway.set()
        assert go_on.wait(30)
        daemon.feed.add({"pulled": "hub:2"})
        daemon.feed.add({"step": "starting the new hub"})
        return {"changes": ["hub"]}

    def watch() -> None:  # shown while the request still runs, not only at its end
        assert halfway.wait(30)
        deadline = threading.Event()
        while "bytes 5" not in shown.seen and not deadline.wait(0.01):
            pass
        go_on.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    answer = while_showing(_client(daemon), shown, 0.01, upgrade)
    watcher.join()
    assert answer == {"changes": ["hub"]}
    assert shown.seen == [
        "pull hub:2",
        "bytes 5",
        "bytes done",
        "pulled hub:2",
        "step starting the new hub",
    ]


def test_the_request_s_error_is_raised_after_the_progress_it_reported() -> None:
    daemon, shown = FeedDaemon(), Recorder()

    def upgrade() -> dict[str, Any]:
        daemon.feed.add({"step": "rolling back: the previous hub and the database copy"})
        raise StackError("the new hub failed its health gate: rolled back")

    with pytest.raises(StackError, match="rolled back"):
        while_showing(_client(daemon), shown, 0.01, upgrade)
    assert shown.seen == ["step rolling back: the previous hub and the database copy"]


def test_a_daemon_without_the_progress_route_still_answers() -> None:
    daemon, shown = FeedDaemon(knows_progress=False), Recorder()
    assert while_showing(_client(daemon), shown, 0.01, lambda: {"ok": True}) == {"ok": True}
    progress = DaemonProgress(_client(daemon), shown)
    progress.show()
    assert shown.seen == []
