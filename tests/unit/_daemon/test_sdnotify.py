from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hubd._daemon.sdnotify import Heartbeat, Notifier


def test_messages_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        notifier.ready("running")
        notifier.watchdog()
        assert sock.recv(1024) == b"READY=1\nSTATUS=running"
        assert sock.recv(1024) == b"WATCHDOG=1"
    assert notifier.watchdog_interval_s == 1.0


def test_heartbeat_pings_only_while_the_loop_makes_progress(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        now = [100.0]
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        heartbeat = Heartbeat(notifier, clock=lambda: now[0])
        assert heartbeat.tick()
        assert sock.recv(64) == b"WATCHDOG=1"
        now[0] += 1.5  # no beat for longer than one ping interval (1 s): a stuck loop
        assert not heartbeat.tick()
        with pytest.raises(BlockingIOError):
            sock.recv(64)
        heartbeat.beat()  # the loop (or a pull's progress) moves again
        assert heartbeat.tick()
        assert sock.recv(64) == b"WATCHDOG=1"


def test_heartbeat_thread_feeds_the_watchdog_for_a_live_loop(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        heartbeat = Heartbeat(Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}))
        heartbeat.start()
        try:
            for _ in range(3):
                heartbeat.beat()
                assert sock.recv(64) == b"WATCHDOG=1"
        finally:
            heartbeat.close()


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
