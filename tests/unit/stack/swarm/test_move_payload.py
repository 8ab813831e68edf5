"""What the move's helpers run, here on tmp folders and loopback: the manifest sees every
difference that matters, and a send/receive round trip keeps files exactly as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hubd.stack.swarm import move_payload
from hubd.stack.swarm.move import compare_manifests
from tests.ports import free_port

SCRIPT = move_payload.__file__
ENV = {
    **os.environ,
    move_payload.ENV_IO_TIMEOUT: "20",
    move_payload.ENV_CONNECT_DEADLINE: "20",
    move_payload.ENV_CONNECT_RETRY: "0.05",
}


def make_home(root: Path) -> None:
    (root / "work" / "empty").mkdir(parents=True)
    (root / ".hidden").write_text("secret\n")
    (root / "work" / "odd name ü \\ 'q'\t").write_bytes(b"x" * 1000)
    os.close(os.open(root / "work" / os.fsdecode(b"raw\xff"), os.O_CREAT | os.O_WRONLY))
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "big").write_bytes(os.urandom(300_000))
    (root / "link").symlink_to("work/../.hidden")
    (root / "dangling").symlink_to("/nowhere")
    (root / "private").mkdir(mode=0o700)


def test_manifest_lists_everything_and_sees_changes(tmp_path: Path) -> None:
    make_home(tmp_path)
    manifest = move_payload.entries(str(tmp_path))
    paths = [str(e[0]) for e in manifest]
    assert paths == sorted(paths) and paths[0] == "."
    assert {"work/empty", ".hidden", "link", "dangling", "private"} <= set(paths)
    kinds = {str(e[0]): e[1] for e in manifest}
    assert kinds["link"] == "link" and kinds["work/empty"] == "dir" and kinds["big"] == "file"
    assert move_payload.decode(move_payload.encode(manifest)) == manifest
    (tmp_path / "run.sh").chmod(0o644)
    assert compare_manifests(manifest, move_payload.entries(str(tmp_path))) == (
        "'run.sh' differs on the target (mode)"
    )
    (tmp_path / "big").write_bytes(b"y")
    changed = move_payload.entries(str(tmp_path))
    assert move_payload.summary(changed)["sha256"] != move_payload.summary(manifest)["sha256"]


def _run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], env=ENV, stdout=subprocess.PIPE, text=True
    )


def test_send_and_receive_over_loopback_keep_everything(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    make_home(src)
    port = str(free_port())
    receiver = _run("receive", str(dst), port)
    sender = _run("send", str(src), "127.0.0.1", port)
    sent, _ = sender.communicate(timeout=60)
    received, _ = receiver.communicate(timeout=60)
    assert sender.returncode == 0 and receiver.returncode == 0
    sent_summary = [line for line in sent.splitlines() if line.startswith("SUMMARY")]
    assert sent_summary and sent_summary == [
        line for line in received.splitlines() if line.startswith("SUMMARY")
    ]
    assert compare_manifests(move_payload.entries(str(src)), move_payload.entries(str(dst))) is None
    assert os.readlink(dst / "dangling") == "/nowhere"


def test_the_receiver_refuses_a_volume_with_files(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("mine")
    receiver = _run("receive", str(tmp_path), str(free_port()))
    out, _ = receiver.communicate(timeout=30)
    assert receiver.returncode == move_payload.EXIT_NOT_EMPTY
    assert "already holds files" in out and (tmp_path / "kept").read_text() == "mine"


def test_wipe_empties_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    home = tmp_path / "home"
    home.mkdir()
    make_home(home)
    (home / "out").symlink_to(outside)
    wiper = _run("wipe", str(home))
    assert wiper.communicate(timeout=30)[0].strip() == "WIPED"
    assert list(home.iterdir()) == [] and (outside / "keep").exists()


@pytest.mark.parametrize("mode", ["bogus"])
def test_an_unknown_mode_fails(tmp_path: Path, mode: str) -> None:
    process = _run(mode, str(tmp_path))
    assert process.communicate(timeout=30)[0].startswith("ERROR") and process.returncode == 2
