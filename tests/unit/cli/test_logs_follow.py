"""`hubd logs -f` through a daemon, as a process against a real control socket (no Docker):
the text as it comes, Ctrl-C, the log's end, and a daemon that goes away mid-follow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.control import ControlServer
from hubd.timing import Timing
from tests.unit.control.test_streams import StreamingBackend

ROOT = Path(__file__).resolve().parents[3]

# Keep-alives far apart: a follower reading from an idle hub is blocked in its read, with
# nothing coming to wake it, when Ctrl-C comes (and at the daemon's 5 s they are only rarer).
QUIET = Timing(control_stream_keepalive_s=3600.0)

# As a terminal's shell starts a foreground command: SIGINT at its default and not blocked.
# A child inherits both from whoever starts it; a non-interactive shell starts its background
# commands (`cmd &`) with SIGINT ignored, and Python then leaves it ignored, as every Unix
# tool does. CI was started so, and with it every pytest worker (issue 23). Done in a
# separate exec rather than a preexec_fn, which is unsafe in this threaded process.
_AS_FROM_A_TERMINAL = (
    "import os, signal, sys;"
    "signal.signal(signal.SIGINT, signal.SIG_DFL);"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT});"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
# How a script's background command starts: SIGINT ignored, so the terminal's Ctrl-C for
# the script in the foreground leaves it running.
_AS_A_SCRIPTS_BACKGROUND_COMMAND = _AS_FROM_A_TERMINAL.replace("SIG_DFL", "SIG_IGN")


class Following:
    def __init__(self, server: ControlServer, backend: StreamingBackend, env: dict[str, str]):
        self.server, self.backend, self.env = server, backend, env

    def start(self, *argv: str, start: str = _AS_FROM_A_TERMINAL) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", start, "-m", "hubd", "logs", *argv],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )


@pytest.fixture
def following(tmp_path: Path) -> Iterator[Following]:
    runtime = tmp_path / "run"
    backend = StreamingBackend()
    server = ControlServer(runtime / "control.sock", backend, timing=QUIET)
    server.start()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RUNTIME_DIRECTORY": str(runtime),
        "HUBD_CONFIG": str(tmp_path / "c.toml"),
    }
    try:
        yield Following(server, backend, env)
    finally:
        server.close()


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline()


def test_follow_prints_as_it_comes_and_ctrl_c_ends_it_quietly(following: Following) -> None:
    process = following.start("-f", "-n", "1")
    try:
        assert _line(process) == "line 0\n"
        following.backend.streams[0].feed.put("a new line\n")
        assert _line(process) == "a new line\n"
        process.send_signal(signal.SIGINT)  # while it waits for more, with nothing coming
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130  # docs/exit-codes.md: interrupted with Ctrl-C
    assert (out, err) == ("", "")
    # The daemon finds the follower gone at its next write (text or keep-alive), and stops.
    stream = following.backend.streams[0]
    stream.feed.put("nobody reads this\n")
    assert stream.closed.wait(10)


def test_a_follow_started_with_sigint_ignored_keeps_it_ignored(following: Following) -> None:
    # `hubd logs -f > hub.log &` in a script: Ctrl-C for the script does not end the follow.
    process = following.start("-f", "-n", "1", start=_AS_A_SCRIPTS_BACKGROUND_COMMAND)
    try:
        assert _line(process) == "line 0\n"
        process.send_signal(signal.SIGINT)  # discarded by the kernel at once: it is ignored
        stream = following.backend.streams[0]
        stream.feed.put("still here\n")
        assert _line(process) == "still here\n"
        stream.feed.put(None)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, out, err) == (0, "", "")


def test_the_log_s_end_ends_follow_with_0(following: Following) -> None:
    process = following.start("--follow", "-n", "1")
    try:
        assert _line(process) == "line 0\n"
        following.backend.streams[0].feed.put("last words\n")
        assert _line(process) == "last words\n"
        following.backend.streams[0].feed.put(None)  # the hub container stopped
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, out, err) == (0, "", "")


def test_a_daemon_that_goes_away_mid_follow_is_one_line_and_69(following: Following) -> None:
    process = following.start("-f", "-n", "1")
    try:
        assert _line(process) == "line 0\n"
        threading.Thread(target=following.server.close).start()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == os.EX_UNAVAILABLE
    assert err == "hubd: hubd stopped\n" and out == ""


def test_a_refused_follow_is_one_line(following: Following) -> None:
    following.backend.state = "stopped"
    result = subprocess.run(
        [sys.executable, "-m", "hubd", "logs", "-f"],
        env=following.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr == "hubd: there is no hub container yet: run `hubd up`\n"


def test_a_daemon_from_before_streaming_is_told_apart(tmp_path: Path) -> None:
    from tests.unit.control.test_streams import _one_answer

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    body = b'{"error": "no such endpoint: /v1/logs/follow", "kind": "UsageError"}'
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RUNTIME_DIRECTORY": str(runtime),
        "HUBD_CONFIG": str(tmp_path / "c.toml"),
    }
    with _one_answer(runtime / "control.sock", answer, accepts=2):
        result = subprocess.run(
            [sys.executable, "-m", "hubd", "logs", "-f"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert result.returncode == os.EX_UNAVAILABLE
    assert result.stderr.startswith("hubd: the running hubd is older than this command")
    assert result.stderr.count("\n") == 1
