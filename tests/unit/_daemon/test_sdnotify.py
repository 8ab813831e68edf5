from __future__ import annotations

import os
import socket
from pathlib import Path

from hubd._daemon.sdnotify import Notifier


def test_messages_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        notifier.ready("running")
        notifier.watchdog_if_due()
        notifier.watchdog_if_due()  # within half the interval: not sent again
        assert sock.recv(1024) == b"READY=1\nSTATUS=running"
        assert sock.recv(1024) == b"WATCHDOG=1"
        sock.setblocking(False)
        try:
            extra = sock.recv(1024)
        except BlockingIOError:
            extra = b""
        assert extra == b""
    assert notifier.watchdog_interval_s == 1.0


def test_abstract_socket() -> None:
    name = f"hubd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("starting")
        assert sock.recv(1024) == b"STATUS=starting"


def test_watchdog_only_for_our_pid_and_noop_outside_systemd() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    quiet = Notifier({})
    assert not quiet.enabled
    quiet.ready("x")  # nothing to send to, nothing raised


def test_start_timeout_extension(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        Notifier({"NOTIFY_SOCKET": str(path)}).extend_start_timeout(180)
        assert sock.recv(1024) == b"EXTEND_TIMEOUT_USEC=180000000"
