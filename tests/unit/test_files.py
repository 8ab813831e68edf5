"""atomic_write: the old file or the new one, never half, and no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubd.files import atomic_write


def test_replaces_the_file_with_the_given_mode_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write(target, "new\n", mode=0o600)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o600
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_rename_keeps_the_target_and_removes_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()  # a folder in the way: the rename fails
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert (target / "inside").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]


def test_two_writers_never_share_a_temporary_name(tmp_path: Path) -> None:
    # The old helpers used a fixed "<name>.tmp": a stale one (or a second writer) collided.
    target = tmp_path / "pins.json"
    (tmp_path / "pins.tmp").mkdir()
    (tmp_path / ".pins.json.tmp").mkdir()
    atomic_write(target, "{}")
    assert target.read_text() == "{}"
