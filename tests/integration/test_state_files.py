"""The desired-state file on a disk that is really full (a 4 KiB tmpfs)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd._daemon.supervisor import DesiredState
from hubd.errors import StateFileError
from hubd.status import HubState

pytestmark = pytest.mark.integration


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_clear_error_and_the_old_wish_stays(full_disk: Path) -> None:
    desired = DesiredState(full_disk / "desired-state.json")
    desired.set(HubState.STOPPED)
    filler = full_disk / "filler"
    with filler.open("wb", buffering=0) as handle:  # fill it up to the last block
        try:
            while True:
                handle.write(b"x" * 512)
        except OSError:
            pass
    with pytest.raises(StateFileError, match="No space left on device; free some space"):
        desired.set(HubState.RUNNING)
    assert desired.value == HubState.STOPPED  # memory follows the disk
    assert DesiredState(full_disk / "desired-state.json").value == HubState.STOPPED
    assert sorted(p.name for p in full_disk.iterdir()) == ["desired-state.json", "filler"]
