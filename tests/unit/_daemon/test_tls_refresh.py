"""The daemon's HTTPS refresh glue: how often it asks, the name it hands the stack, under the
supervisor's lock, failures as warnings. The stack is a stand-in here; a real leaf replaced
under a running proxy: tests/integration/test_https.py."""

from __future__ import annotations

import logging
import threading

import pytest
from docker.errors import APIError

from hubd._daemon.tls_refresh import TlsRefresh
from hubd.errors import HubdError
from hubd.logsafe import WarnOnce
from hubd.timing import Timing

log = logging.getLogger("hubd")


class FakeStack:
    def __init__(self, lock: threading.RLock) -> None:
        self.mdns_hostnames: tuple[str, ...] = ()
        self.lock = lock
        self.seen: list[tuple[tuple[str, ...], bool]] = []  # names, and whether locked
        self.fail: Exception | None = None

    def refresh_tls(self) -> bool:
        # An RLock that another thread cannot take is held by this one.
        locked = not _free_elsewhere(self.lock)
        self.seen.append((self.mdns_hostnames, locked))
        if self.fail is not None:
            raise self.fail
        return True


def _free_elsewhere(lock: threading.RLock) -> bool:
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(_try_and_release(lock)))
    thread.start()
    thread.join()
    return got[0]


def _try_and_release(lock: threading.RLock) -> bool:
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refresher(
    stack: FakeStack, hostname: str | None = "jupyter.local"
) -> tuple[TlsRefresh, Clock, list[FakeStack | None]]:
    clock = Clock()
    current: list[FakeStack | None] = [stack]
    tls = TlsRefresh(
        Timing(tls_check_interval_s=30.0),
        stack=lambda: current[0],
        lock=stack.lock,
        warn=WarnOnce(log),
        mdns_hostname=lambda: hostname,
        clock=clock,
    )
    return tls, clock, current


def test_the_leaf_is_checked_at_most_once_an_interval() -> None:
    stack = FakeStack(threading.RLock())
    tls, clock, _ = refresher(stack)
    tls.tick()
    clock.now += 29.9
    tls.tick()
    assert len(stack.seen) == 1
    clock.now += 0.1
    tls.tick()
    tls.tick()
    assert len(stack.seen) == 2


def test_without_a_stack_nothing_is_checked_and_a_new_stack_is_checked_at_once() -> None:
    stack = FakeStack(threading.RLock())
    tls, _, current = refresher(stack)
    current[0] = None  # no engine yet
    tls.tick()
    current[0] = stack
    tls.tick()
    assert len(stack.seen) == 1


def test_the_name_mdns_claimed_goes_into_the_leaf_under_the_supervisors_lock() -> None:
    stack = FakeStack(threading.RLock())
    tls, _, _ = refresher(stack, hostname="jupyter-2.local")
    assert tls.refresh_once(stack) is True
    assert stack.seen == [(("jupyter-2.local",), True)]
    assert _free_elsewhere(stack.lock)  # released after


def test_no_name_claimed_means_no_mdns_name_in_the_leaf() -> None:
    stack = FakeStack(threading.RLock())
    stack.mdns_hostnames = ("jupyter.local",)  # from before mDNS stopped
    tls, _, _ = refresher(stack, hostname=None)
    tls.refresh_once(stack)
    assert stack.seen == [((), True)]


@pytest.mark.parametrize(
    "failure",
    [HubdError("the CA's key is unreadable"), APIError("engine said no"), OSError("disk full")],
)
def test_a_failed_renewal_is_a_warning_and_the_next_check_tries_again(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubd")
    stack = FakeStack(threading.RLock())
    stack.fail = failure
    tls, clock, _ = refresher(stack)
    tls.tick()
    clock.now += 30.0
    tls.tick()
    assert len(stack.seen) == 2
    failed = [r for r in caplog.records if "could not renew" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING, logging.DEBUG]
    assert str(failure) in failed[0].getMessage()
