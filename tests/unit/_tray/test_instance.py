"""One tray per desktop session (_tray/instance): the lock, its key, and what it leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hubd._tray.instance import OtherTray, lock_path, only_tray, session_key

X0 = {"DISPLAY": ":0"}


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    return tmp_path / "run" / "hubd"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"DISPLAY": ":0"}, "x11-_0"),
        ({"DISPLAY": ":0.0"}, "x11-_0"),  # the screen number is not another session
        ({"DISPLAY": "localhost:10.0"}, "x11-localhost_10"),
        ({"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":1"}, "wayland-wayland-1"),
        ({"WAYLAND_DISPLAY": "/run/user/1000/wayland-0"}, "wayland-wayland-0"),
        ({"DISPLAY": "../../etc/x"}, "x11-_"),
        ({}, "default"),
    ],
)
def test_the_session_key_is_a_plain_file_name(environ: dict[str, str], key: str) -> None:
    assert session_key(environ) == key
    assert "/" not in session_key(environ)


def test_a_second_tray_of_the_session_is_told_the_first_one_s_pid(runtime: Path) -> None:
    with only_tray(runtime, X0) as first:
        assert first is None
        with only_tray(runtime, X0) as second:
            assert second == OtherTray(os.getpid())
            assert second.message() == f"a hubd tray is already running (pid {os.getpid()})"
        with only_tray(runtime, {"DISPLAY": ":1"}) as elsewhere:  # another display: its own
            assert elsewhere is None
    with only_tray(runtime, X0) as after:  # released with the block
        assert after is None
    assert oct(lock_path(runtime, X0).stat().st_mode & 0o777) == "0o600"


def test_a_tray_killed_outright_keeps_no_one_out(runtime: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from hubd._tray.instance import only_tray\n"
        "with only_tray(Path(sys.argv[1]), {'DISPLAY': ':0'}) as other:\n"
        "    print('held' if other is None else 'refused', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(runtime)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with only_tray(runtime, X0) as other:
            assert other == OtherTray(holder.pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    # Its file is still there, with its pid; its lock went with it.
    assert lock_path(runtime, X0).read_text().strip() == str(holder.pid)
    with only_tray(runtime, X0) as other:
        assert other is None
    assert lock_path(runtime, X0).read_text().strip() == str(os.getpid())


def test_a_helper_that_outlives_the_tray_does_not_hold_the_lock(runtime: Path) -> None:
    with only_tray(runtime, X0) as first:
        assert first is None
        # Even a child that keeps every descriptor it may (close_fds=False) has not this one.
        helper = subprocess.Popen(["sleep", "60"], close_fds=False)
    try:
        with only_tray(runtime, X0) as other:
            assert other is None
    finally:
        helper.kill()
        helper.wait()


def test_a_runtime_folder_hubd_may_not_use_costs_the_guard_not_the_tray(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o777)
    runtime.chmod(0o777)  # open to every account: refused by prepare_runtime_dir
    with only_tray(runtime, X0) as other:
        assert other is None
    assert not lock_path(runtime, X0).exists()
