"""Telling the person what `hubd up` is doing: steps, build output, pull progress bars.

Multi-GB user images are normal, so pulls get a real progress bar on a terminal (rich), and
a line now and then elsewhere (a service's log).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class LogReporter:
    """For `hubd run` and anything without a terminal: plain log lines."""

    def __init__(self, timing: Timing) -> None:
        self.report_every_s = timing.pull_report_every_s

    def step(self, message: str) -> None:
        log.info("%s", message)

    def build_output(self, line: str) -> None:
        if line.strip():
            log.debug("build: %s", line.rstrip())

    @contextmanager
    def pulling(self, image: str) -> Iterator[PullProgress]:
        totals = _LayerTotals()
        last, every_s = 0.0, self.report_every_s

        class _Plain:
            def update(self, event: dict[str, Any]) -> None:
                nonlocal last
                done, total = totals.update(event)
                now = time.monotonic()
                if total and now - last >= every_s:
                    last = now
                    log.info("pulling %s: %d of %d MB", image, done >> 20, total >> 20)

        log.info("pulling %s", image)
        yield _Plain()
        log.info("pulled %s", image)


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
