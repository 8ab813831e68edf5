"""Context.daemon(): a command typed right after `hubd service install` waits for the starting
service's control socket (a real ControlServer that opens a moment later), and does not wait
when no service is starting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hubd.cli import context as context_module
from hubd.control import ControlServer
from hubd.paths import Paths
from hubd.timing import Timing
from tests.unit.control.test_control import Backend


class Service:
    """An installed service that says it is starting `starting_for` times, then no more."""

    def __init__(self, starting_for: int) -> None:
        self.left = starting_for
        self.asked = 0

    def starting(self) -> bool:
        self.asked += 1
        self.left -= 1
        return self.left >= 0


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    own = Paths(*(tmp_path / d for d in ("etc", "state", "run", "log")))
    monkeypatch.setattr(context_module, "resolve_paths", lambda mode=None, environ=None: own)
    return own


def context(deadline_s: float = 60.0) -> context_module.Context:
    ctx = context_module.Context()
    ctx.__dict__["timing"] = Timing(daemon_up_poll_s=0.05, service_answer_deadline_s=deadline_s)
    return ctx


def test_waits_for_the_socket_of_a_starting_service(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("hubd.service.installed_daemon", lambda: Service(starting_for=1000))
    servers: list[ControlServer] = []

    def hubd_opens_its_socket() -> None:
        servers.append(ControlServer(paths.control_socket, Backend(), timing=Timing()))
        servers[0].start()

    opens = threading.Timer(0.5, hubd_opens_its_socket)  # after hubd's imports
    opens.start()
    try:
        daemon = context().daemon()
        assert daemon is not None and str(daemon.status().state) == "running"
        assert "waiting for the hubd service to start" in capsys.readouterr().err
    finally:
        opens.join()
        for server in servers:
            server.close()


def test_no_wait_without_a_starting_service(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("hubd.service.installed_daemon", lambda: None)
    assert context().daemon() is None
    service = Service(starting_for=0)  # installed, but running (or stopped), not starting
    monkeypatch.setattr("hubd.service.installed_daemon", lambda: service)
    assert context().daemon() is None
    assert service.asked == 1
    assert capsys.readouterr().err == ""


def test_gives_up_when_the_service_stops_starting_or_at_the_deadline(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(starting_for=3)  # then it failed: no socket will come
    monkeypatch.setattr("hubd.service.installed_daemon", lambda: service)
    began = time.monotonic()
    assert context().daemon() is None
    assert service.asked == 4 and time.monotonic() - began < 30  # not the 60 s deadline
    monkeypatch.setattr("hubd.service.installed_daemon", lambda: Service(starting_for=10**6))
    began = time.monotonic()
    assert context(deadline_s=0.3).daemon() is None
    assert time.monotonic() - began >= 0.3
