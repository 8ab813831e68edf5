"""Telling the person what `hubd up` is doing: steps, build output, pull progress bars.

Multi-GB user images are normal, so pulls get a real progress bar on a terminal (rich), and
a line now and then elsewhere (a service's log).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

from hubd.timing import Timing

log = logging.getLogger("hubd")

# Without a terminal, report a pull's progress at most this often.


class PullProgress(Protocol):
    def update(self, event: dict[str, Any]) -> None: ...


class Reporter(Protocol):
    def step(self, message: str) -> None: ...
    def build_output(self, line: str) -> None: ...
    def pulling(self, image: str) -> Any: ...  # a context manager giving a PullProgress


class _LayerTotals:
    """Sums per-layer byte counts from the engine's pull events (`total` may be -1)."""

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}

    def update(self, event: dict[str, Any]) -> tuple[int, int]:
        layer = event.get("id")
        detail = event.get("progressDetail") or {}
        status = str(event.get("status", ""))
        if layer and status == "Downloading" and detail.get("total", -1) > 0:
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif (
            layer
            and status in ("Download complete", "Pull complete", "Already exists")
            and layer in self.layers
        ):
            total = self.layers[layer][1]
            self.layers[layer] = (total, total)
        done = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        return done, total


# One entry of the progress feed a daemon keeps for `hubd up` through it (ProgressFeed):
# {"step": text} | {"build": line} | {"pull": image, "done": bytes, "total": bytes}
# | {"pulled": image}.
Entry = dict[str, Any]


class LogReporter:
    """For `hubd run` and anything without a terminal: plain log lines. With `feed`, every
    step, build line and (throttled) pull progress also goes there as an Entry."""

    def __init__(self, timing: Timing, feed: Callable[[Entry], None] | None = None) -> None:
        self.report_every_s = timing.pull_report_every_s
        self.feed = feed or (lambda _entry: None)

    def step(self, message: str) -> None:
        self.feed({"step": message})
        log.info("%s", message)

    def build_output(self, line: str) -> None:
        if line.strip():
            self.feed({"build": line.rstrip()})
            log.debug("build: %s", line.rstrip())

    @contextmanager
    def pulling(self, image: str) -> Iterator[PullProgress]:
        totals = _LayerTotals()
        last, every_s = 0.0, self.report_every_s
        # The feed is read by a person's terminal: more often than the log.
        feed_last, feed_every_s = 0.0, every_s / 20
        feed = self.feed

        class _Plain:
            def update(self, event: dict[str, Any]) -> None:
                nonlocal last, feed_last
                done, total = totals.update(event)
                now = time.monotonic()
                if total and now - feed_last >= feed_every_s:
                    feed_last = now
                    feed({"pull": image, "done": done, "total": total})
                if total and now - last >= every_s:
                    last = now
                    log.info("pulling %s: %d of %d MB", image, done >> 20, total >> 20)

        log.info("pulling %s", image)
        feed({"pull": image, "done": 0, "total": 0})
        yield _Plain()
        feed({"pulled": image})
        log.info("pulled %s", image)


class ProgressFeed:
    """The last entries of a daemon's progress, numbered, for `hubd up` through the daemon to
    show what `hubd up` without one shows (GET /progress?since=N)."""

    def __init__(self, keep: int = 500) -> None:
        self._entries: deque[tuple[int, Entry]] = deque(maxlen=keep)
        self._next = 0
        self._lock = threading.Lock()

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries.append((self._next, entry))
            self._next += 1

    def since(self, number: int) -> dict[str, Any]:
        with self._lock:
            return {
                "next": self._next,
                "entries": [entry for seq, entry in self._entries if seq >= number],
            }


class FeedReplay:
    """Shows a daemon's feed entries with this process's own Reporter: the same steps, build
    lines and progress bars as `hubd up` without a daemon."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self._pulls: dict[str, tuple[ExitStack, PullProgress]] = {}

    def show(self, entry: Entry) -> None:
        if "step" in entry:
            self.reporter.step(str(entry["step"]))
        elif "build" in entry:
            self.reporter.build_output(str(entry["build"]))
        elif "pull" in entry:
            image = str(entry["pull"])
            if image not in self._pulls:
                stack = ExitStack()
                self._pulls[image] = (stack, stack.enter_context(self.reporter.pulling(image)))
            total = int(entry.get("total") or 0)
            if total:
                detail = {"current": int(entry.get("done") or 0), "total": total}
                self._pulls[image][1].update(
                    {"id": "all", "status": "Downloading", "progressDetail": detail}
                )
        elif "pulled" in entry:
            self._finish(str(entry["pulled"]))

    def _finish(self, image: str) -> None:
        found = self._pulls.pop(image, None)
        if found is not None:
            found[1].update({"id": "all", "status": "Pull complete"})
            found[0].close()

    def close(self) -> None:
        for image in list(self._pulls):
            self._finish(image)


class TerminalReporter:
    """On a terminal: rich progress bars for pulls, dimmed build output."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    def step(self, message: str) -> None:
        self.console.print(f"[bold]•[/bold] {message}")

    def build_output(self, line: str) -> None:
        if line.strip():
            self.console.print(f"  [dim]{line.rstrip()}[/dim]", highlight=False)

    @contextmanager
    def pulling(self, image: str) -> Iterator[PullProgress]:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        totals = _LayerTotals()
        with Progress(
            TextColumn("  pulling {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        ) as bars:
            task = bars.add_task(image, total=None)

            class _Bar:
                def update(self, event: dict[str, Any]) -> None:
                    done, total = totals.update(event)
                    bars.update(task, completed=done, total=total or None)

            yield _Bar()
            total = totals.update({})[1] or 1
            bars.update(task, completed=total, total=total)


def reporter_for_terminal(timing: Timing) -> Reporter:
    return TerminalReporter() if sys.stderr.isatty() else LogReporter(timing)
