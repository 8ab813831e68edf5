"""Ending a wait from another thread or a signal (hubd/wakeup.py), with real sockets."""

from __future__ import annotations

import os
import signal
import threading

from hubd.wakeup import Wakeup


def test_a_wake_ends_a_wait_and_stays_until_drained() -> None:
    wakeup = Wakeup()
    try:
        assert not wakeup.wait(0)
        threading.Timer(0.05, wakeup.wake).start()
        assert wakeup.wait(60)  # a hang catcher: the wake comes in 0.05 s
        assert wakeup.wait(0)  # still pending: the loop acts, then drains
        wakeup.drain()
        assert not wakeup.wait(0)
    finally:
        wakeup.close()
        wakeup.close()  # safe twice


def test_many_wakes_never_block_and_one_drain_forgets_them_all() -> None:
    wakeup = Wakeup()
    try:
        for _ in range(100_000):  # far beyond the socket's buffer: the extra ones are dropped
            wakeup.wake()
        wakeup.drain()
        assert not wakeup.wait(0)
    finally:
        wakeup.close()


def test_a_signal_wakes_it_through_the_wakeup_fd_with_a_handler_that_only_sets_a_flag() -> None:
    wakeup, seen = Wakeup(), []
    previous_fd = signal.set_wakeup_fd(wakeup.write_fd, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert wakeup.wait(60)
        assert seen == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.set_wakeup_fd(previous_fd)
        wakeup.close()
