"""The repository password and the record of the last backup, in hubd's state folder.

The password is made on the first backup and never leaves this machine except inside the
helper container (as a file, never an environment variable: `docker inspect` shows those).
Without it the backup cannot be read by anyone, the owner included.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hubd.errors import BackupError
from hubd.files import atomic_write

PASSWORD_FILE_NAME = "repository-password"
RECORD_FILE_NAME = "last-backup.json"
LOCK_FILE_NAME = "backup.lock"


def backup_dir(state_dir: Path) -> Path:
    return state_dir / "backup"


def password_file(state_dir: Path) -> Path:
    return backup_dir(state_dir) / PASSWORD_FILE_NAME


def read_password(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise BackupError(
            f"no repository password at {path}: copy the password you kept for this backup "
            "there (or pass --password-file FILE)"
        ) from None
    except OSError as exc:
        raise BackupError(f"cannot read the repository password {path}: {exc.strerror}") from None
    if not text:
        raise BackupError(f"the repository password file {path} is empty")
    return text


def create_password(path: Path) -> str:
    """A new random password in a file only the owner can read (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password


@dataclass(frozen=True)
class BackupRecord:
    """What the last backups did; times are seconds since the epoch."""

    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    last_target: str | None = None
    last_snapshot: str | None = None
    # When backups were first tried on this machine: "no backup for N hours" counts from here
    # until the first one succeeds.
    first_attempt_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_record(state_dir: Path) -> BackupRecord:
    path = backup_dir(state_dir) / RECORD_FILE_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return BackupRecord()
    if not isinstance(data, dict):
        return BackupRecord()
    known = set(BackupRecord.__dataclass_fields__)
    return BackupRecord(**{k: v for k, v in data.items() if k in known})


def save_record(state_dir: Path, record: BackupRecord) -> None:
    folder = backup_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(folder / RECORD_FILE_NAME, json.dumps(record.to_json(), indent=2))


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """One backup or restore at a time on this machine (the daemon's and the CLI's alike)."""
    folder = backup_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / LOCK_FILE_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError("a backup or restore is already running; try again later") from None
        yield
