"""The daemon's signal handlers: flags only, the loop woken through the wakeup fd, and the
previous handlers given back by close() (real signals sent to this process)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from hubd.config import Config
from hubd.daemon import Daemon
from hubd.paths import Paths
from hubd.timing import Timing


def test_signals_wake_the_loop_and_close_gives_the_previous_handlers_back(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "state", tmp_path / "run", tmp_path / "log")
    daemon = Daemon(paths, tmp_path / "hubd.toml", Config(), Timing())
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    before_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before_fd)
    try:
        daemon.install_signal_handlers()
        assert not daemon.wake.wait(0)
        os.kill(os.getpid(), signal.SIGHUP)
        assert daemon.wake.wait(60)  # a hang catcher: the wake is already there
        assert daemon.reload_requested and daemon.stop_requested == 0
        daemon.wake.drain()
        os.kill(os.getpid(), signal.SIGTERM)
        assert daemon.wake.wait(60)
        assert daemon.stop_requested == 1
    finally:
        daemon.close()
        daemon.close()  # safe twice
    assert {s: signal.getsignal(s) for s in before} == before
    assert signal.set_wakeup_fd(before_fd) == before_fd  # the previous wakeup fd is back
