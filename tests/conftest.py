"""Shared test settings: every test gets its own hubd directories, never the machine's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def hubd_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """systemd's directory variables, which hubd honours, pointed at this test's folders."""
    dirs = {
        "CONFIGURATION_DIRECTORY": tmp_path / "etc",
        "STATE_DIRECTORY": tmp_path / "state",
        "RUNTIME_DIRECTORY": tmp_path / "run",
        "LOGS_DIRECTORY": tmp_path / "log",
    }
    for name, path in dirs.items():
        monkeypatch.setenv(name, str(path))
    for name in ("HUBD_CONFIG", "HUBD_TIMING", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        monkeypatch.delenv(name, raising=False)
    yield dirs
