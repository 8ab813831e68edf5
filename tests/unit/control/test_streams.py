"""Streamed answers (`hubd logs -f` through the daemon) over a real Unix socket: text as it
comes, refusals and failures with their kind, and every way a stream ends on either side."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.control import ControlClient, ControlServer
from hubd.errors import DaemonUnreachable, DockerUnavailable, StackError
from hubd.timing import Timing
from tests.unit.control.test_control import Backend, ScriptedStream

# Keep-alives often, so that a client that left is found at once.
FAST = Timing(
    control_stream_keepalive_s=0.05,
    control_stream_silence_s=5.0,
    control_request_read_timeout_s=0.2,  # a request's, not a stream's: see the pause below
)


class StreamingBackend(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.streams: list[ScriptedStream] = []

    def follow_logs(self, tail: int) -> ScriptedStream:
        stream = super().follow_logs(tail)
        assert isinstance(stream, ScriptedStream)
        self.streams.append(stream)
        return stream


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ControlServer, ControlClient, StreamingBackend]]:
    backend = StreamingBackend()
    server = ControlServer(tmp_path / "run" / "control.sock", backend, timing=FAST)
    server.start()
    try:
        yield server, ControlClient(server.path, timeout=5, timing=FAST), backend
    finally:
        server.close()


def test_text_comes_as_it_is_written_and_the_end_ends_the_iteration(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    _, client, backend = served
    lines = client.follow_logs(tail=2)
    text = ""
    while text.count("\n") < 2:  # in one record or two, as the server found them queued
        text += next(lines)
    assert text == "line 0\nline 1\n"
    stream = backend.streams[0]
    stream.feed.put("later\n")  # written while the client waits: it comes at once
    assert next(lines) == "later\n"
    stream.feed.put(None)  # the hub container stopped
    assert list(lines) == []
    assert client.daemon_logs(1) == ["hubd line 0"]  # the server serves on


def test_a_client_that_pauses_is_waited_for_and_loses_nothing(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    # `hubd logs -f` suspended with Ctrl-Z, then `fg`: far longer than a request may take,
    # with far more text than the socket's buffers hold.
    _, client, backend = served
    lines = client.follow_logs(tail=1)
    assert next(lines) == "line 0\n"
    stream = backend.streams[0]
    sent = [f"{n:06d} " + "x" * 1000 + "\n" for n in range(3000)]
    for line in sent:
        stream.feed.put(line)
    time.sleep(1.0)  # paused (5 x the request timeout)
    got = ""
    while got.count("\n") < len(sent):
        got += next(lines)
    assert got == "".join(sent)
    assert not stream.closed.is_set()
    lines.close()


def test_a_refusal_comes_before_any_text_with_its_kind(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    _, client, backend = served
    backend.state = "stopped"
    with pytest.raises(StackError, match="no hub container yet"):
        next(client.follow_logs(tail=5))


def test_a_failure_mid_stream_comes_with_its_kind_after_the_text_before_it(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    _, client, backend = served
    lines = client.follow_logs(tail=1)
    assert next(lines) == "line 0\n"
    backend.streams[0].feed.put(ConnectionError("the engine went away"))
    with pytest.raises(DockerUnavailable, match="the log stream broke: the engine went away"):
        next(lines)


def test_a_client_that_hangs_up_gets_its_stream_closed(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    server, client, backend = served
    lines = client.follow_logs(tail=1)
    assert next(lines) == "line 0\n"
    lines.close()  # as Ctrl-C does: the socket closes, nothing more is read
    stream = backend.streams[0]
    # The hub says nothing more; the next keep-alive finds the client gone.
    assert stream.closed.wait(10)
    deadline = time.monotonic() + 10
    while server.streams and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.streams


def test_a_server_that_closes_mid_stream_says_hubd_stopped(
    served: tuple[ControlServer, ControlClient, StreamingBackend],
) -> None:
    server, client, backend = served
    lines = client.follow_logs(tail=1)
    assert next(lines) == "line 0\n"
    threading.Thread(target=server.close).start()
    with pytest.raises(DaemonUnreachable, match="hubd stopped"):
        next(lines)
    assert backend.streams[0].closed.wait(10)


@pytest.mark.parametrize(
    ("after_head", "message"),
    [
        (b'{"text": "a\\n"}\n', "its control socket closed"),  # killed: no last record
        (b'{"text": "a\\n"}\n{"te', "its control socket closed"),  # mid-record
    ],
)
def test_a_daemon_that_dies_mid_stream_is_one_clear_error(
    tmp_path: Path, after_head: bytes, message: str
) -> None:
    path = tmp_path / "control.sock"
    with _one_answer(path, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + after_head):
        lines = ControlClient(path, timeout=5, timing=FAST).follow_logs(tail=1)
        assert next(lines) == "a\n"
        with pytest.raises(DaemonUnreachable, match=message):
            next(lines)


def test_a_daemon_that_falls_silent_mid_stream_is_taken_for_hung(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    silent = Timing(control_stream_silence_s=0.3)
    with _one_answer(path, b"HTTP/1.1 200 OK\r\n\r\n{}\n", hold=True):
        lines = ControlClient(path, timeout=5, timing=silent).follow_logs(tail=1)
        with pytest.raises(DaemonUnreachable, match=r"stopped answering \(nothing for 0.3 s"):
            next(lines)


class _one_answer:
    """A fake daemon on `path` that answers one request with `raw`, then hangs up (or, with
    `hold`, keeps the connection open and says nothing more). With `accepts`, that many
    connections are taken: one that sends nothing (a probe, as `hubd`'s is_available) gets
    nothing."""

    def __init__(self, path: Path, raw: bytes, hold: bool = False, accepts: int = 1) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(accepts)
        self.raw, self.hold, self.accepts = raw, hold, accepts
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        for _ in range(self.accepts):
            connection, _ = self.listener.accept()
            with connection:
                if not connection.recv(65536):
                    continue
                connection.sendall(self.raw)
                if self.hold:
                    self.release.wait(30)
                return

    def __enter__(self) -> _one_answer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)
        self.listener.close()
