"""Another local account must not be able to stand in for hubd's control socket.

Without XDG_RUNTIME_DIR the socket's folder is /tmp/runtime-UID, which anybody can create
first. These tests let `nobody` do exactly that, for real (CI runs as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from hubd.control import ControlServer
from hubd.control.client import ControlClient, check_server
from hubd.errors import UntrustedPath
from hubd.paths import prepare_runtime_dir
from hubd.timing import Timing
from tests.as_nobody import NOBODY, as_nobody

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="becoming another user needs root (CI is root)"
)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A world-writable, sticky folder like /tmp, that `nobody` can reach."""
    tmp = Path(tempfile.mkdtemp(prefix="hubd-accounts-"))
    tmp.chmod(0o1777)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp)


def test_a_folder_made_first_by_another_account_is_refused(shared_tmp: Path) -> None:
    planted = shared_tmp / "runtime-0"

    def plant() -> str:
        planted.mkdir(mode=0o700)
        return "ok"

    assert as_nobody(plant) == "ok"
    with pytest.raises(UntrustedPath, match="belongs to uid 65534") as caught:
        prepare_runtime_dir(planted)
    assert "\n" not in str(caught.value)


def test_a_symlink_is_refused(shared_tmp: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (shared_tmp / "runtime-0").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UntrustedPath, match="is a symlink"):
        prepare_runtime_dir(shared_tmp / "runtime-0")


def test_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "runtime-0"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(UntrustedPath, match="open to other accounts"):
        prepare_runtime_dir(folder)


def test_a_missing_folder_is_made_private_and_accepted(shared_tmp: Path) -> None:
    folder = prepare_runtime_dir(shared_tmp / "runtime-0")
    assert folder.stat().st_uid == 0 and folder.stat().st_mode & 0o777 == 0o700


def test_an_ordinary_user_needs_mode_0700(shared_tmp: Path) -> None:
    def check(mode: int) -> str:
        folder = shared_tmp / f"runtime-{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        try:
            prepare_runtime_dir(folder)
        except UntrustedPath as exc:
            return str(exc)
        return "accepted"

    assert as_nobody(lambda: check(0o700)) == "accepted"
    assert "open to other accounts" in as_nobody(lambda: check(0o750))


@contextlib.contextmanager
def nobodys_server(path: Path) -> Iterator[Callable[[], int]]:
    """A fake daemon run by `nobody` on `path`; yields a function returning how many bytes
    it was sent over all connections (after the client gave up). It keeps accepting until a
    second passes without a connection: the CLI connects once to see whether a daemon
    listens, then again for the request, and the listener must still be there for that."""
    ready_r, ready_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            os.chmod(path, 0o777)
            server.listen(4)
            os.write(ready_w, b"x")
            server.settimeout(20)
            total = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    conn, _ = server.accept()
                    server.settimeout(1.0)
                    conn.settimeout(2.0)
                    with contextlib.suppress(OSError):
                        while chunk := conn.recv(65536):
                            total += len(chunk)
                    conn.close()
            os.write(result_w, str(total).encode())
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(result_w)
    try:
        assert os.read(ready_r, 1) == b"x"

        def received() -> int:
            with os.fdopen(result_r) as pipe:
                return int(pipe.read())

        yield received
    finally:
        os.close(ready_r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_the_client_sends_nothing_to_a_server_of_another_account(shared_tmp: Path) -> None:
    path = shared_tmp / "control.sock"
    with nobodys_server(path) as received:
        with pytest.raises(UntrustedPath, match="another local account \\(uid 65534\\)"):
            ControlClient(path).add_user("eve", "secret-password")
        assert received() == 0


def test_the_cli_says_so_in_one_line(shared_tmp: Path) -> None:
    path = shared_tmp / "control.sock"
    env = {**os.environ, "RUNTIME_DIRECTORY": str(shared_tmp), "HUBD_LOG_LEVEL": "warning"}
    with nobodys_server(path) as received:
        done = subprocess.run(
            [sys.executable, "-m", "hubd", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert received() == 0
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "served by another local account" in lines[0], done.stderr


def test_the_daemon_refuses_a_planted_folder(shared_tmp: Path) -> None:
    planted = shared_tmp / "run"

    def plant() -> str:
        planted.mkdir(mode=0o700)
        return "planted"

    assert as_nobody(plant) == "planted"
    with pytest.raises(UntrustedPath, match="belongs to uid 65534"):
        ControlServer(planted / "control.sock", cast(Any, object()), timing=Timing())
    assert not (planted / "control.sock").exists()


def test_the_client_talks_to_its_own_users_server(tmp_path: Path) -> None:
    # The same check lets our own (root's) listener through: only the uid decides.
    path = tmp_path / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))
        check_server(client, path)
        client.close()
    finally:
        server.close()
