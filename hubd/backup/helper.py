"""restic in a helper container: the only way hubd reads or writes people's volumes for a backup.

Docker's volume folders are never read from the host (on macOS they live inside Docker
Desktop's VM). The helper mounts the target folder at /repo and the volumes under /data; the
repository password reaches it as a file copied into the container before it starts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound

from hubd.errors import BackupError
from hubd.stack.containers import TarEntry, tar_of
from hubd.stack.naming import StackNames
from hubd.stack.volume_trust import check_volume

log = logging.getLogger(__name__)

REPO_MOUNT = "/repo"
DATA_ROOT = "/data"
PASSWORD_PATH = "/run/hubd-backup/password"
CACHE_MOUNT = "/cache"
ROLE_BACKUP_HELPER = "backup-helper"
ROLE_BACKUP_CACHE = "backup-cache"
HOST_NAME = "hubd"

# restic's exit codes: 1 fatal, 3 some files unreadable (snapshot still made), 12 wrong password.
RESTIC_WRONG_PASSWORD = 12
RESTIC_PARTIAL = 3


@dataclass(frozen=True)
class Mount:
    source: str  # a volume name, or an absolute host folder
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class Result:
    exit_code: int
    output: str  # standard output
    errors: str = ""  # standard error

    def last_line(self) -> str:
        lines = [line for line in (self.errors or self.output).splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.exit_code}"


class Helper:
    """Runs one restic (or shell) command at a time in a short-lived container."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        names: StackNames,
        repo_folder: str,
        password: str,
    ) -> None:
        self.client = client
        self.image = image
        self.names = names
        self.repo_folder = repo_folder
        self.password = password

    @property
    def container_name(self) -> str:
        return f"{self.names.stack}-backup"

    def remove_leftover(self) -> None:
        """A helper left by a killed hubd would hold its name: it is ours, remove it."""
        try:
            container = self.client.containers.get(self.container_name)
        except NotFound:
            return
        container.remove(force=True)

    def _cache_volume(self) -> str:
        name = f"{self.names.stack}-backup-cache"
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels=self.names.labels(ROLE_BACKUP_CACHE))
        return name

    def restic(
        self,
        args: Sequence[str],
        mounts: Sequence[Mount] = (),
        files: Mapping[str, bytes] | None = None,
    ) -> Result:
        return self._run(["restic", *args], mounts, files)

    def shell(self, script: str, mounts: Sequence[Mount] = ()) -> Result:
        return self._run(["sh", "-ec", script], mounts)

    def _run(
        self,
        command: list[str],
        mounts: Sequence[Mount],
        files: Mapping[str, bytes] | None = None,
    ) -> Result:
        self.remove_leftover()
        for mount in mounts:
            if not mount.source.startswith("/"):
                # A helper runs as root and restores delete: never through a volume that
                # could be a folder of the host (volume_trust.py).
                check_volume(self.client, self.names, mount.source)
        volumes = {
            REPO_MOUNT: Mount(self.repo_folder, REPO_MOUNT, read_only=False),
            # restic's local cache of the repository's index: without it every backup reads
            # the whole index back from the (maybe slow, USB or NAS) target first.
            CACHE_MOUNT: Mount(self._cache_volume(), CACHE_MOUNT, read_only=False),
        }
        volumes.update({m.target: m for m in mounts})
        try:
            container = self.client.containers.create(
                self.image,
                entrypoint=command[:1],
                command=command[1:],
                name=self.container_name,
                hostname=HOST_NAME,
                labels=self.names.labels(ROLE_BACKUP_HELPER),
                environment={
                    "RESTIC_REPOSITORY": REPO_MOUNT,
                    "RESTIC_PASSWORD_FILE": PASSWORD_PATH,
                    "RESTIC_CACHE_DIR": CACHE_MOUNT,
                    # Progress bars off: the log gets lines, not carriage returns.
                    "RESTIC_PROGRESS_FPS": "0.0167",
                },
                volumes={
                    m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                    for m in volumes.values()
                },
                network_mode="none",
                user="0:0",
            )
        except APIError as exc:
            raise BackupError(f"could not create the backup helper: {exc.explanation}") from None
        try:
            extra = dict(files or {})
            extra[PASSWORD_PATH] = self.password.encode() + b"\n"
            # The password and keys: readable only by root, as whom restic runs in the helper.
            entries = (TarEntry(path, data, mode=0o600) for path, data in extra.items())
            container.put_archive("/", tar_of(entries, folder_mode=0o700))
            started = time.monotonic()
            container.start()
            exit_code = int(container.wait()["StatusCode"])
            output = bytes(container.logs(stdout=True, stderr=False)).decode(errors="replace")
            errors = bytes(container.logs(stdout=False, stderr=True)).decode(errors="replace")
            log.debug(
                "backup helper %s: exit %s in %.1f s",
                command[:2],
                exit_code,
                time.monotonic() - started,
            )
            return Result(exit_code, output, errors)
        finally:
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)
