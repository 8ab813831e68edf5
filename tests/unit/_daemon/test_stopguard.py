"""The shutdown promise (the stop deadline), with a fake exit: deadline and second signal."""

from __future__ import annotations

import threading
import time

import pytest

from hubd._daemon.stopguard import EXIT_FORCED, ShutdownRequested, StopGuard


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_a_stop_that_does_not_finish_in_time_is_forced() -> None:
    signals, exits = [0], Exits()
    guard = StopGuard(lambda: signals[0], grace_s=0.3, exit_now=exits, poll_s=0.01)
    guard.start()
    time.sleep(0.2)
    assert not exits.called.is_set()  # no signal yet: no deadline running
    signals[0] = 1
    started = time.monotonic()
    assert exits.called.wait(5)
    assert time.monotonic() - started >= 0.25  # the grace was given; wait(5) bounds the rest
    assert exits.codes == [EXIT_FORCED]


def test_before_any_signal_it_looks_at_its_idle_pace() -> None:
    looks, exits = [0], Exits()

    def signals_seen() -> int:
        looks[0] += 1
        return 0

    guard = StopGuard(signals_seen, grace_s=1, exit_now=exits, poll_s=0.001, idle_poll_s=3600)
    guard.start()
    time.sleep(0.2)
    guard.done()
    assert looks[0] == 1  # once, then waiting out its idle pace: not 200 looks
    assert not exits.called.is_set()


def test_a_second_signal_exits_at_once() -> None:
    signals, exits = [1], Exits()
    guard = StopGuard(lambda: signals[0], grace_s=60, exit_now=exits, poll_s=0.01)
    guard.start()
    time.sleep(0.1)
    signals[0] = 2
    assert exits.called.wait(1)


def test_a_graceful_stop_in_time_is_not_forced() -> None:
    signals, exits = [1], Exits()
    guard = StopGuard(lambda: signals[0], grace_s=0.3, exit_now=exits, poll_s=0.01)
    guard.start()
    guard.done()
    time.sleep(0.5)
    assert not exits.called.is_set()


def test_long_work_unwinds_at_its_next_progress_once_asked() -> None:
    signals = [0]
    guard = StopGuard(lambda: signals[0], grace_s=10)
    guard.cancel_if_stopping()
    signals[0] = 1
    with pytest.raises(ShutdownRequested):
        guard.cancel_if_stopping()
