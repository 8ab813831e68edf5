"""Backups of one hubd stack: the hub database, secrets and config, and every person's volume.

Consistent while people work, without stopping anything: the database is copied with SQLite's
online backup API inside the running hub (or a one-off container of the hub's image when it
is stopped), then restic in a helper container reads the hub's volume (with that copy in place
of the live file), hubd's config and each person's volume, all mounted read-only.

Layout of a snapshot: /data/hub (the hub's data volume), /data/users/NAME (each person's
volume), /data/hubd/config.toml and /data/hubd/manifest.json (who has which volume).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from docker.errors import APIError, ContainerError, ImageNotFound, NotFound

from hubd import __version__
from hubd.backup import keys
from hubd.backup.helper import (
    DATA_ROOT,
    HOST_NAME,
    RESTIC_PARTIAL,
    RESTIC_WRONG_PASSWORD,
    Helper,
    Mount,
    Result,
)
from hubd.config import Config
from hubd.errors import BackupError, HubdError
from hubd.stack import Stack
from hubd.stack.images import image_present, pull_image
from hubd.stack.settings import HUB_DATA_DIR
from hubd.stack.swarm.homes import homes_elsewhere
from hubd.stack.volume_trust import check_volume
from hubd.tls import store as tls_store

log = logging.getLogger(__name__)

DB_NAME = "jupyterhub.sqlite"
# The online copy of the database, on the hub's volume beside the live one.
DB_COPY_DIR = ".hubd-backup"
TAG = "hubd"
HUB_DIR = f"{DATA_ROOT}/hub"
USERS_DIR = f"{DATA_ROOT}/users"
HUBD_DIR = f"{DATA_ROOT}/hubd"
MANIFEST = f"{HUBD_DIR}/manifest.json"
CONFIG_COPY = f"{HUBD_DIR}/config.toml"
# hubd's CA (hubd/tls): a restored hub keeps the root every device already trusts.
TLS_COPY_DIR = f"{HUBD_DIR}/tls"
TLS_FILES = ("root.key", "root.crt")

# Run by python3 in the hub's image: SQLite's online backup copies a live database
# consistently, page by page, while the hub goes on writing.
_ONLINE_COPY = """
import os, sqlite3, sys
data, copy_dir = sys.argv[1], sys.argv[2]
live = os.path.join(data, "{db}")
os.makedirs(copy_dir, mode=0o700, exist_ok=True)
tmp = os.path.join(copy_dir, "{db}.tmp")
if os.path.exists(tmp):
    os.remove(tmp)
if os.path.exists(live):
    src = sqlite3.connect("file:" + live + "?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    with dst:
        src.backup(dst)
    dst.close(); src.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, os.path.join(copy_dir, "{db}"))
""".replace("{db}", DB_NAME)


@dataclass(frozen=True)
class BackupResult:
    snapshot: str
    target: str
    users: list[str]
    seconds: float
    files_new: int = 0
    bytes_added: int = 0
    # People whose files live on another Swarm node, which this backup cannot read.
    elsewhere: dict[str, str] = field(default_factory=dict)  # user -> node hostname

    def warning(self) -> str | None:
        if not self.elsewhere:
            return None
        who = ", ".join(f"{user} (on {node})" for user, node in sorted(self.elsewhere.items()))
        return f"not in this backup: {who} — move them home or back up that node"

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "target": self.target,
            "users": self.users,
            "seconds": round(self.seconds, 1),
            "files_new": self.files_new,
            "bytes_added": self.bytes_added,
            "elsewhere": dict(self.elsewhere),
            "warning": self.warning(),
        }


def check_target(target: str | None) -> Path:
    if not target:
        raise BackupError(
            "no backup target: pass --to FOLDER or set `backup_target` in the config "
            "(a folder on a USB disk or a mounted NAS)"
        )
    path = Path(target).expanduser()
    if not path.is_absolute():
        raise BackupError(f"backup target {target!r} must be an absolute path to a folder")
    if not path.is_dir():
        raise BackupError(
            f"backup target {path} does not exist or is not a folder: plug in or mount the "
            "disk, or create the folder"
        )
    return path


def is_repository(folder: Path) -> bool:
    return (folder / "config").is_file() and (folder / "keys").is_dir()


class BackupEngine:
    def __init__(self, stack: Stack, config: Config, state_dir: Path, config_file: Path) -> None:
        self.stack = stack
        self.config = config
        self.state_dir = state_dir
        self.config_file = config_file

    # ------------------------------------------------------------------ shared

    def helper(self, folder: Path, password: str) -> Helper:
        image = self.config.backup_image
        if not image_present(self.stack.client, image):
            pull_image(self.stack.client, image, self.stack.reporter)
        return Helper(self.stack.client, image, self.stack.names, str(folder), password)

    def password_for(self, folder: Path, password_file: Path | None = None) -> str:
        path = password_file or keys.password_file(self.state_dir)
        if not is_repository(folder) and password_file is None and not path.exists():
            return keys.create_password(path)
        return keys.read_password(path)

    def check_restic(self, result: Result, what: str, password_file: Path | None = None) -> None:
        if result.exit_code == 0:
            return
        if result.exit_code == RESTIC_WRONG_PASSWORD or "wrong password" in result.errors:
            where = password_file or keys.password_file(self.state_dir)
            raise BackupError(
                f"{what}: wrong repository password (the one in {where} does not open this backup)"
            )
        raise BackupError(f"{what} failed: {result.last_line()}")

    # ------------------------------------------------------------------ backup

    def backup(self, target: str | None = None, log_failure: bool = True) -> BackupResult:
        """One backup now. Records success or failure for status and the schedule; a failure
        is one line in the log too, unless the caller shows it (the CLI does)."""
        chosen = target or self.config.backup_target
        now = time.time()
        record = keys.load_record(self.state_dir)
        with keys.exclusive(self.state_dir):
            record = replace(
                record,
                last_attempt_at=now,
                last_target=chosen,
                first_attempt_at=record.first_attempt_at or now,
            )
            try:
                result = self._backup(chosen)
            except HubdError as exc:
                keys.save_record(self.state_dir, replace(record, last_error=str(exc)))
                if log_failure:
                    log.error("backup to %s FAILED: %s", chosen or "(no target)", exc)
                raise
            except Exception as exc:  # Docker hiccups: still one line in the log and status
                message = f"backup failed: {exc}"
                keys.save_record(self.state_dir, replace(record, last_error=message))
                log.error("backup to %s FAILED: %s", chosen, exc)
                raise BackupError(message) from None
            keys.save_record(
                self.state_dir,
                replace(
                    record,
                    last_success_at=now,
                    last_error=None,
                    last_snapshot=result.snapshot,
                ),
            )
        log.info(
            "backup %s to %s done in %.1f s (%d users)",
            result.snapshot,
            result.target,
            result.seconds,
            len(result.users),
        )
        if result.warning():
            log.warning("backup %s: %s", result.snapshot, result.warning())
        return result

    def _backup(self, target: str | None) -> BackupResult:
        started = time.monotonic()
        folder = check_target(target)
        if self.stack.hub.find() is None:
            raise BackupError("there is no hub to back up yet: run `hubd up` first")
        password = self.password_for(folder)
        helper = self.helper(folder, password)
        if not is_repository(folder):
            if any(folder.iterdir()):
                raise BackupError(
                    f"{folder} is neither empty nor a hubd backup: choose an empty folder"
                )
            self.stack.reporter.step(f"creating an encrypted backup repository in {folder}")
            result = helper.restic(["init"])
            self.check_restic(result, "creating the repository")
        else:
            # Stale locks of a killed run would block forget/prune; hubd's own lock (held
            # here) says no other hubd run uses this repository now.
            helper.restic(["unlock", "--remove-all"])
        volumes = self.stack.user_volumes()
        for volume in (self.stack.names.hub_data_volume, *volumes.values()):
            # Before any work: a volume that could be a host folder stops the backup at once
            # (the helper checks again when it mounts them).
            check_volume(self.stack.client, self.stack.names, volume)
        self.stack.reporter.step("copying the hub database (online, the hub keeps running)")
        self._copy_database()
        users = sorted(name for name in volumes if name)
        mounts = [Mount(self.stack.names.hub_data_volume, HUB_DIR)]
        mounts += [Mount(volumes[user], f"{USERS_DIR}/{user}") for user in users]
        manifest = {
            "hubd_version": __version__,
            "stack": self.stack.names.stack,
            "created_at": time.time(),
            # The volume's name without the stack's prefix: DockerSpawner's escaped name.
            "users": {user: _volume_suffix(self.stack, volumes[user]) for user in users},
        }
        files = {MANIFEST: json.dumps(manifest, indent=2).encode()}
        if self.config_file.is_file():
            files[CONFIG_COPY] = self.config_file.read_bytes()
        tls_dir = tls_store.files_in(self.state_dir).folder
        for name in TLS_FILES:
            if (tls_dir / name).is_file():
                files[f"{TLS_COPY_DIR}/{name}"] = (tls_dir / name).read_bytes()
        self.stack.reporter.step(f"backing up the hub and {len(users)} people's files to {folder}")
        args = ["backup", "--json", "--host", HOST_NAME, "--tag", TAG]
        for live in ("", "-journal", "-wal", "-shm"):
            args += ["--exclude", f"{HUB_DIR}/{DB_NAME}{live}"]
        result = helper.restic([*args, DATA_ROOT], mounts, files)
        if result.exit_code not in (0, RESTIC_PARTIAL):
            self.check_restic(result, "the backup")
        summary = _summary(result.output)
        if not summary.get("snapshot_id"):
            raise BackupError(f"the backup made no snapshot: {result.last_line()}")
        if result.exit_code == RESTIC_PARTIAL:
            log.warning("backup: some files could not be read:\n%s", result.output[-2000:])
        self._forget(helper)
        return BackupResult(
            snapshot=str(summary["snapshot_id"])[:8],
            target=str(folder),
            users=users,
            seconds=time.monotonic() - started,
            files_new=int(summary.get("files_new", 0)),
            bytes_added=int(summary.get("data_added", 0)),
            elsewhere=homes_elsewhere(self.stack.client, self.stack.names),
        )

    def _forget(self, helper: Helper) -> None:
        keep = {
            "--keep-daily": self.config.backup_keep_daily,
            "--keep-weekly": self.config.backup_keep_weekly,
            "--keep-monthly": self.config.backup_keep_monthly,
        }
        args = [item for flag, n in keep.items() if n > 0 for item in (flag, str(n))]
        if not args:
            return  # keep everything
        result = helper.restic(["forget", "--tag", TAG, "--prune", "--keep-last", "1", *args])
        # The snapshot is safe either way; an unpruned repository is only bigger.
        if result.exit_code != 0:
            log.warning("backup: pruning old snapshots failed: %s", result.last_line())

    def _copy_database(self) -> None:
        copy_dir = f"{HUB_DATA_DIR}/{DB_COPY_DIR}"
        command = ["python3", "-c", _ONLINE_COPY, HUB_DATA_DIR, copy_dir]
        hub = self.stack.hub.find()
        assert hub is not None
        if hub.status == "running":
            exit_code, output = hub.exec_run(command, user="0")
            if exit_code != 0:
                text = bytes(output).decode(errors="replace").strip().splitlines()
                raise BackupError(
                    f"copying the hub database failed: {text[-1] if text else exit_code}"
                )
            return
        # A stopped hub writes nothing, but its image has the Python to copy with.
        try:
            self.stack.client.containers.run(
                str(hub.attrs["Config"]["Image"]),
                command,
                entrypoint=[],
                volumes={self.stack.names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"}},
                network_mode="none",
                user="0",
                remove=True,
            )
        except (ContainerError, ImageNotFound, APIError) as exc:
            raise BackupError(f"copying the hub database failed: {exc}") from None


def _volume_suffix(stack: Stack, volume: str) -> str:
    prefix = stack.names.user_volume("")
    return volume[len(prefix) :] if volume.startswith(prefix) else volume


def _summary(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("message_type") == "summary":
                return data
    return {}


def volume_exists(stack: Stack, name: str) -> bool:
    try:
        stack.client.volumes.get(name)
    except NotFound:
        return False
    return True
