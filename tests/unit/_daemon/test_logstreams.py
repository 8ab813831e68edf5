"""The hub's log as the daemon follows it: across the hub's restarts (the engine is a fake
here: the integration test follows a real hub through a real restart)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from hubd._daemon.logstreams import HubLogStream
from hubd.errors import DockerUnavailable, NoHubContainer
from hubd.stack import Stack
from hubd.stack.containers import ContainerState


class EngineStream:
    """docker-py's CancellableStream of one container run's log."""

    def __init__(self, *chunks: bytes) -> None:
        self.feed: queue.Queue[bytes | None] = queue.Queue()
        for chunk in chunks:
            self.feed.put(chunk)
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed.is_set():
            try:
                chunk = self.feed.get(timeout=0.01)
            except queue.Empty:
                continue
            if chunk is None:  # the container stopped
                return
            if chunk == b"BREAK":  # the engine went away mid-stream
                raise ConnectionError("Connection aborted.")
            yield chunk

    def close(self) -> None:
        self.closed.set()


class FakeHub:
    def __init__(self) -> None:
        self.running = True
        self.opened: list[tuple[int | None, float | None]] = []
        self.streams: list[EngineStream] = []

    def state(self) -> ContainerState:
        return ContainerState(exists=True, status="running" if self.running else "exited")

    def log_stream(self, tail: int | None, since: float | None = None) -> Any:
        if not self.running:
            raise NoHubContainer("there is no hub container yet: run `hubd up`")
        self.opened.append((tail, since))
        self.streams.append(EngineStream(*([b"first run\n"] if since is None else [])))
        return self.streams[-1]


class FakeStack:
    """The part of a Stack the stream uses: its hub."""

    def __init__(self) -> None:
        self.hub = FakeHub()


def test_the_hub_s_log_goes_on_after_a_restart_from_its_new_start() -> None:
    stack = FakeStack()
    engine = stack.hub
    stream = HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01)
    text = iter(stream)
    assert next(text) == "first run\n"
    engine.running = False
    engine.streams[0].feed.put(None)  # the hub stopped
    assert next(text) == HubLogStream.STOPPED
    engine.running = True  # the daemon started it again
    assert _next_from_the_second_stream(text, engine, b"second run\n") == ["second run\n"]
    tail, since = engine.opened[1]
    assert tail is None and since is not None  # from the moment it stopped, nothing older
    stream.close()
    assert engine.streams[1].closed.is_set()
    assert list(text) == []


def _next_from_the_second_stream(text: Iterator[str], engine: Any, line: bytes) -> list[str]:
    """The stream's next text, read meanwhile on another thread, once the hub's log was
    opened a second time and `line` came on it."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(next(text)))
    reader.start()
    while len(engine.streams) < 2:
        threading.Event().wait(0.01)
    engine.streams[1].feed.put(line)
    reader.join(10)
    return got


def test_an_engine_that_goes_away_mid_stream_is_waited_for_too() -> None:
    stack = FakeStack()
    engine = stack.hub
    stream = HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01)
    text = iter(stream)
    assert next(text) == "first run\n"
    engine.streams[0].feed.put(b"BREAK")
    assert next(text) == HubLogStream.STOPPED
    assert _next_from_the_second_stream(text, engine, b"back\n") == ["back\n"]
    stream.close()


def test_closing_while_waiting_for_the_hub_ends_it() -> None:
    stack = FakeStack()
    engine = stack.hub
    stream = HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01)
    text = iter(stream)
    assert next(text) == "first run\n"
    engine.running = False
    engine.streams[0].feed.put(None)
    assert next(text) == HubLogStream.STOPPED
    threading.Timer(0.1, stream.close).start()
    assert list(text) == []  # waited for the hub, then closed: the end, no error
    assert len(engine.streams) == 1


def test_no_hub_or_no_engine_is_refused_at_once() -> None:
    stack = FakeStack()
    engine = stack.hub
    engine.running = False
    with pytest.raises(NoHubContainer, match="no hub container"):
        HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01)
    with pytest.raises(DockerUnavailable):
        HubLogStream(lambda: None, tail=10, poll_s=0.01)


def test_a_hub_the_daemon_is_recreating_is_waited_for_from_the_start() -> None:
    # `hubd logs -f` just after `hubd config set`: the daemon wants a hub, and its new
    # container is not there yet.
    stack = FakeStack()
    engine = stack.hub
    engine.running = False
    stream = HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01, hub_wanted=lambda: True)
    text = iter(stream)
    assert next(text) == HubLogStream.NOT_YET
    engine.running = True  # the new container runs
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(next(text)))
    reader.start()
    while not engine.streams:
        threading.Event().wait(0.01)
    engine.streams[0].feed.put(b"new hub\n")
    reader.join(10)
    assert got == ["new hub\n"]
    tail, since = engine.opened[0]
    assert tail is None and since is not None  # its whole log: nothing of it is older
    stream.close()
    assert engine.streams[0].closed.is_set()


def test_closing_before_a_wanted_hub_came_ends_it() -> None:
    stack = FakeStack()
    stack.hub.running = False
    stream = HubLogStream(lambda: cast(Stack, stack), tail=10, poll_s=0.01, hub_wanted=lambda: True)
    text = iter(stream)
    assert next(text) == HubLogStream.NOT_YET
    threading.Timer(0.1, stream.close).start()
    assert list(text) == []
    assert stack.hub.streams == []
