"""Restore from a backup: everything (accounts, passwords, secrets, everyone's files), or one
person's files. First a plan that says what would change; nothing is touched until it is
carried out, and the CLI asks before anything existing is overwritten."""

from __future__ import annotations

import json
import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.errors import APIError, ContainerError

from hubd.backup.engine import (
    CONFIG_COPY,
    DB_COPY_DIR,
    DB_NAME,
    HUB_DIR,
    MANIFEST,
    TAG,
    TLS_COPY_DIR,
    USERS_DIR,
    BackupEngine,
    check_target,
    is_repository,
    volume_exists,
)
from hubd.backup.helper import Helper, Mount
from hubd.errors import BackupError, UserAccountError
from hubd.stack.images import ensure_hub_image
from hubd.stack.naming import LABEL_USER, ROLE_HUB_DATA, ROLE_USER_DATA
from hubd.stack.settings import HUB_DATA_DIR
from hubd.stack.volume_trust import check_volume
from hubd.tls import store as tls_store

log = logging.getLogger(__name__)

# Run by python3 in the hub's image on the restored database (JupyterHub's own tables).
_FORGET_SERVERS = """
import os, sqlite3, sys
if os.path.exists(sys.argv[1]):
    db = sqlite3.connect(sys.argv[1])
    with db:
        db.execute("UPDATE spawners SET server_id = NULL, state = '{}', started = NULL")
        db.execute("DELETE FROM servers")
    db.close()
"""


@dataclass(frozen=True)
class Change:
    volume: str
    what: str  # "hub" or a user name
    source: str  # folder in the snapshot
    overwrites: bool  # the volume exists and its contents will be replaced

    def describe(self) -> str:
        thing = (
            "accounts, passwords and the hub's secrets"
            if self.what == "hub"
            else (f"{self.what}'s files")
        )
        verb = "replace" if self.overwrites else "create"
        return f"{verb} volume {self.volume}: {thing}"


@dataclass
class RestorePlan:
    folder: Path
    snapshot: str
    snapshot_time: str
    changes: list[Change] = field(default_factory=list)
    stop_hub: bool = False
    stop_servers: list[str] = field(default_factory=list)
    config_copy_to: Path | None = None

    @property
    def overwrites(self) -> bool:
        return any(change.overwrites for change in self.changes)

    def lines(self) -> list[str]:
        out = [f"from backup {self.snapshot} of {self.snapshot_time} in {self.folder}:"]
        if self.stop_hub:
            out.append("stop the hub and everyone's servers while restoring, then start it again")
        for user in self.stop_servers:
            out.append(f"stop {user}'s server while restoring")
        out += [change.describe() for change in self.changes]
        if self.config_copy_to is not None:
            out.append(f"write hubd's config from the backup to {self.config_copy_to}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "snapshot_time": self.snapshot_time,
            "lines": self.lines(),
            "overwrites": self.overwrites,
        }


class Restorer:
    def __init__(self, engine: BackupEngine, password_file: Path | None = None) -> None:
        self.engine = engine
        self.stack = engine.stack
        self.password_file = password_file

    def _helper(self, folder: Path) -> Helper:
        return self.engine.helper(folder, self.engine.password_for(folder, self.password_file))

    def plan(
        self, source: str | None, user: str | None = None, snapshot: str = "latest"
    ) -> RestorePlan:
        folder = check_target(source or self.engine.config.backup_target)
        if not is_repository(folder):
            raise BackupError(f"{folder} holds no hubd backup")
        helper = self._helper(folder)
        listed = helper.restic(["snapshots", "--json", "--tag", TAG])
        self.engine.check_restic(listed, "reading the backup", self.password_file)
        snapshots = _json_list(listed.output)
        if not snapshots:
            raise BackupError(f"{folder} holds no backup yet")
        chosen = (
            snapshots[-1]
            if snapshot == "latest"
            else next((s for s in snapshots if str(s.get("id", "")).startswith(snapshot)), None)
        )
        if chosen is None:
            raise BackupError(
                f"no backup {snapshot!r} in {folder}; leave out --snapshot for the latest"
            )
        snap_id = str(chosen["id"])
        dumped = helper.restic(["dump", snap_id, MANIFEST])
        self.engine.check_restic(dumped, "reading the backup's manifest", self.password_file)
        try:
            manifest = json.loads(dumped.output)
        except ValueError:
            raise BackupError("the backup's manifest is unreadable") from None
        users: dict[str, str] = dict(manifest.get("users") or {})
        names = self.stack.names
        plan = RestorePlan(folder, snap_id[:8], str(chosen.get("time", ""))[:19])
        if user is not None:
            if user not in users:
                have = ", ".join(sorted(users)) or "nobody"
                raise UserAccountError(f"the backup holds no files of {user!r} (it has: {have})")
            wanted = {user: users[user]}
        else:
            wanted = users
            hub_volume = names.hub_data_volume
            plan.changes.append(
                Change(hub_volume, "hub", HUB_DIR, volume_exists(self.stack, hub_volume))
            )
            hub = self.stack.hub.find()
            plan.stop_hub = hub is not None and hub.status == "running"
            config_file = self.engine.config_file
            plan.config_copy_to = config_file.with_name(config_file.name + ".from-backup")
        running = {s.user for s in self.stack.user_servers() if s.running}
        for name, suffix in sorted(wanted.items()):
            volume = names.user_volume(suffix)
            plan.changes.append(
                Change(volume, name, f"{USERS_DIR}/{name}", volume_exists(self.stack, volume))
            )
            if name in running and not plan.stop_hub:
                plan.stop_servers.append(name)
        for change in plan.changes:
            if change.overwrites:
                check_volume(self.stack.client, names, change.volume)  # before any question
        return plan

    def carry_out(self, plan: RestorePlan) -> list[str]:
        """Restore as planned. The caller has stopped the hub (through the daemon if any)."""
        helper = self._helper(plan.folder)
        done: list[str] = []
        for user in plan.stop_servers:
            self._stop_server(user)
            done.append(f"stopped {user}'s server")
        for change in plan.changes:
            if not volume_exists(self.stack, change.volume):
                labels = (
                    self.stack.names.labels(ROLE_HUB_DATA)
                    if change.what == "hub"
                    else self.stack.names.labels(ROLE_USER_DATA, **{LABEL_USER: change.what})
                )
                self.stack.client.volumes.create(change.volume, labels=labels)
        mounts = [Mount(c.volume, c.source, read_only=False) for c in plan.changes]
        includes = " ".join(f"--include {shlex.quote(c.source)}" for c in plan.changes)
        # Emptied first: a file made after the backup must not survive a restore of it.
        clear = "".join(f"find {shlex.quote(c.source)} -mindepth 1 -delete\n" for c in plan.changes)
        db_fix = ""
        if any(c.what == "hub" for c in plan.changes):
            copy = f"{HUB_DIR}/{DB_COPY_DIR}/{DB_NAME}"
            db_fix = (
                f"if [ -f {copy} ]; then mv {copy} {HUB_DIR}/{DB_NAME}; fi\n"
                f"cd {HUB_DIR} && rm -f {DB_NAME}-journal {DB_NAME}-wal {DB_NAME}-shm\n"
            )
        script = f"{clear}restic restore {plan.snapshot} --target / {includes}\n{db_fix}"
        result = helper.shell(script, mounts)
        self.engine.check_restic(result, "the restore", self.password_file)
        done += [
            change.describe().replace("replace", "replaced").replace("create ", "created ")
            for change in plan.changes
        ]
        if any(c.what == "hub" for c in plan.changes):
            self._forget_servers()
            done.append("marked everyone's servers as stopped in the restored hub database")
        if plan.config_copy_to is not None:
            dumped = helper.restic(["dump", plan.snapshot, CONFIG_COPY])
            if dumped.exit_code == 0 and dumped.output:
                plan.config_copy_to.parent.mkdir(parents=True, exist_ok=True)
                plan.config_copy_to.write_text(dumped.output)
                done.append(f"wrote the backed-up config to {plan.config_copy_to}")
            if self._restore_root(helper, plan.snapshot):
                done.append("restored the hub's root certificate: devices that trusted it still do")
        return done

    def _restore_root(self, helper: Helper, snapshot: str) -> bool:
        """hubd's CA from the backup (backups made before hubd had one have none): a device
        that trusted the hub before trusts the restored one. The leaf is made anew from it."""
        texts = {}
        for name in ("root.key", "root.crt"):
            dumped = helper.restic(["dump", snapshot, f"{TLS_COPY_DIR}/{name}"])
            if dumped.exit_code != 0 or "BEGIN" not in dumped.output:
                return False
            texts[name] = dumped.output
        files = tls_store.files_in(self.engine.state_dir)
        tls_store.write_file(files.root_key, texts["root.key"].encode(), 0o600)
        tls_store.write_file(files.root_cert, texts["root.crt"].encode(), 0o644)
        files.leaf_cert.unlink(missing_ok=True)
        return True

    def _forget_servers(self) -> None:
        """The restored database still names the servers that ran at backup time (containers
        of the old stack, maybe of another machine): none of them runs now."""
        image, _ = ensure_hub_image(
            self.stack.client,
            self.stack.names,
            self.engine.config.hub_base_image,
            self.stack.reporter,
        )
        try:
            self.stack.client.containers.run(
                image,
                ["python3", "-c", _FORGET_SERVERS, f"{HUB_DATA_DIR}/{DB_NAME}"],
                entrypoint=[],
                volumes={self.stack.names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"}},
                network_mode="none",
                user="0",
                remove=True,
            )
        except (ContainerError, APIError) as exc:
            raise BackupError(f"preparing the restored hub database failed: {exc}") from None

    def _stop_server(self, user: str) -> None:
        """Through the hub, so that it knows; then wait until the container is gone."""
        self.stack.hub_api().stop_server(user)
        timing = self.stack.timing
        deadline = time.monotonic() + timing.restore_server_stop_deadline_s
        while any(s.user == user and s.running for s in self.stack.user_servers()):
            if time.monotonic() > deadline:
                raise BackupError(f"{user}'s server did not stop; nothing was restored")
            time.sleep(timing.restore_server_stop_poll_s)


def _json_list(output: str) -> list[dict[str, Any]]:
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("["):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, list):
                return [item for item in data if isinstance(item, dict)]
    return []
