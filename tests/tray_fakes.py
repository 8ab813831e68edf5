"""The daemon as plain data behind the ControlBackend protocol, for the tray's tests.

Served by a real `hubd.control.ControlServer` on a temporary socket, so the tray talks to it
exactly as it talks to `hubd run`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hubd._tray.menu import DesktopFacts
from hubd.control import ControlServer
from hubd.control.routes import Stream
from hubd.errors import BackupError, DockerUnavailable, NodeError, UsageError, UserAccountError
from hubd.status import Status, Supervision
from hubd.timing import Timing

URL = "http://jupyter.local:8000/"


class FakeDaemon:
    def __init__(self, users: Iterable[str] = ("alice", "bob")) -> None:
        self.state = "running"
        self.desired = "running"
        self.restart_count = 0
        self.last_error: str | None = None
        self.users: dict[str, dict[str, Any]] = {
            name: {"name": name, "admin": name == "alice", "server_running": name == "alice"}
            for name in users
        }
        self.calls: list[str] = []
        self.locked: set[str] = set()  # names locked out after failed sign-ins
        self.update: dict[str, Any] | None = None  # the status' `update` field
        self.backup_status: dict[str, Any] = {
            "target": "/media/usb/hub-backup",
            "age_s": 3 * 3600 + 5,
            "last_error": None,
            "overdue": False,
            "running": False,
        }
        self.backup_error: str | None = None
        # The machines of the hub's Swarm, as `GET /nodes` lists them; empty: one machine.
        self.nodes: list[dict[str, Any]] = []

    @property
    def add_user_calls(self) -> list[str]:
        return [call.split(" ", 1)[1] for call in self.calls if call.startswith("add_user ")]

    def status(self) -> Status:
        return Status.from_json(
            {
                "state": self.state,
                "desired": self.desired,
                "url": URL,
                "local_url": "http://localhost:8000/",
                "mdns": {
                    "state": "advertising",
                    "hostname": "jupyter.local",
                    "addresses": ["192.0.2.5"],
                },
                "restart_count": self.restart_count,
                "last_error": self.last_error,
                "servers": [
                    {"user": u["name"], "running": u["server_running"]} for u in self.users.values()
                ],
                "version": "0.1.0",
                "update": self.update,
                "backup": self.backup_status,
                "nodes": self.nodes,
            }
        )

    def start(self) -> Supervision:
        self.calls.append("start")
        self.desired, self.state = "running", "starting"
        return Supervision.from_json(self.status().to_json())

    def stop(self) -> Supervision:
        self.calls.append("stop")
        self.desired, self.state = "stopped", "stopped"
        return Supervision.from_json(self.status().to_json())

    def restart(self) -> Supervision:
        self.calls.append("restart")
        self.state = "restarting"
        return Supervision.from_json(self.status().to_json())

    def logs(self, tail: int) -> list[str]:
        return [f"line {i}" for i in range(tail)]

    def daemon_logs(self, tail: int) -> list[str]:
        return [f"hubd line {i}" for i in range(tail)]

    def follow_logs(self, tail: int) -> Stream:  # the tray does not follow logs
        raise UsageError("not in this fake")

    def follow_daemon_logs(self, tail: int) -> Stream:
        raise UsageError("not in this fake")

    def reload_config(self, config_file: str) -> dict[str, Any]:
        return {"config_file": config_file, "notes": []}

    def progress(self, since: int) -> dict[str, Any]:
        return {"next": since, "entries": []}

    def list_users(self) -> list[dict[str, Any]]:
        if self.state != "running":
            raise DockerUnavailable("the hub is not running")
        return list(self.users.values())

    def add_user(
        self, name: str, password: str, admin: bool, node: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(f"add_user {name}" + (f" node={node}" if node else ""))
        if not name.isalnum() or name != name.lower():
            raise UserAccountError(
                f"username {name!r} is not allowed: use lowercase letters and digits"
            )
        if name in self.users:
            raise UserAccountError(f"user {name!r} already exists")
        self.users[name] = {"name": name, "admin": admin, "server_running": False}
        return self.users[name]

    def remove_user(self, name: str, delete_data: bool) -> dict[str, Any]:
        raise NotImplementedError

    def move_user(self, name: str, to: str, stop_server: bool, dry_run: bool) -> dict[str, Any]:
        raise NotImplementedError  # the tray does not move people between machines

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        self.calls.append(f"set_password {name}")
        if name not in self.users:
            raise UserAccountError(f"there is no user {name!r}")
        self.locked.discard(name)
        return {"name": name}

    def unlock_user(self, name: str) -> dict[str, Any]:
        self.calls.append(f"unlock_user {name}")
        if name not in self.users:
            raise UserAccountError(f"there is no user {name!r}")
        was_locked = name in self.locked
        self.locked.discard(name)
        return {"name": name, "was_locked": was_locked}

    def upgrade_plan(self, pull: bool) -> dict[str, Any]:
        self.calls.append(f"upgrade_plan pull={pull}")
        changes = (self.update or {}).get("changes", [])
        return {"up_to_date": not changes, "changes": [c.split("|") for c in changes]}

    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("upgrade_apply")
        self.update = {"available": False, "last_result": "upgraded", "last_ok": True}
        return {"changes": [], "database_copy": "/srv/jupyterhub/data/x"}

    def backup(self, target: str | None) -> dict[str, Any]:
        self.calls.append("backup")
        if self.backup_error is not None:
            self.backup_status = {**self.backup_status, "last_error": self.backup_error}
            raise BackupError(self.backup_error)
        self.backup_status = {**self.backup_status, "age_s": 1.0, "last_error": None}
        return {"snapshot": "abcd1234", "target": self.backup_status["target"], "users": []}

    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.nodes)

    def _node(self, name: str) -> dict[str, Any]:
        for node in self.nodes:
            if name in (node["hostname"], node["id"]):
                return node
        raise NodeError(f"no node {name!r}")

    def add_node(self, advertise_addr: str | None) -> dict[str, Any]:
        self.calls.append(f"add_node {advertise_addr}")
        created = not self.nodes
        if created:
            self.nodes = two_machines()[:1]
        address = advertise_addr or "192.0.2.5"
        command = f"docker swarm join --token SWMTKN-1-fake {address}:2377"
        return {"join_command": command, "address": address, "created": created}

    def remove_node(self, node: str) -> dict[str, Any]:
        found = self._node(node)
        if found.get("homes"):
            raise NodeError(f"{', '.join(found['homes'])} has their files on {node}")
        self.nodes.remove(found)
        return {"node": found["hostname"], "id": found["id"], "was_up": True}

    def label_node(self, node: str, label: str, remove: bool) -> dict[str, Any]:
        found = self._node(node)
        labels = set(found.get("labels", []))
        changed = (label in labels) == remove
        labels = labels - {label} if remove else labels | {label}
        found["labels"] = sorted(labels)
        return {"node": found["hostname"], "labels": found["labels"], "changed": changed}

    def set_node_state(self, hostname: str, state: str) -> None:
        """A machine goes down or comes back, as the Swarm would report it."""
        for node in self.nodes:
            if node["hostname"] == hostname:
                node["state"] = state


def two_machines() -> list[dict[str, Any]]:
    """The hub's machine and a second one where bob lives, both ready."""
    return [
        {
            "id": "m" * 25,
            "hostname": "hubhost",
            "role": "manager",
            "state": "ready",
            "availability": "active",
            "this_machine": True,
            "running": ["alice"],
        },
        {
            "id": "w" * 25,
            "hostname": "gpubox",
            "role": "worker",
            "state": "ready",
            "availability": "active",
            "resources": [{"kind": "NVIDIA-GPU", "count": 2}],
            "labels": ["gpu"],
            "homes": ["bob"],
        },
    ]


@contextmanager
def short_temp_dir(prefix: str) -> Iterator[Path]:
    """A folder under /tmp: AF_UNIX socket paths are limited to ~100 bytes, and pytest's
    tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def serving(daemon: FakeDaemon, socket: Path) -> Iterator[ControlServer]:
    """`daemon` behind a real ControlServer on `socket`, closed when the block ends."""
    server = ControlServer(socket, daemon, timing=Timing())
    server.start()
    try:
        yield server
    finally:
        server.close()


def recording_browser(workdir: Path) -> str:
    """A $BROWSER value (webbrowser honours it): a script that appends each URL it is asked to
    open to `workdir`/browser.log, standing in for a browser."""
    browser = workdir / "browser"
    browser.write_text('#!/bin/sh\nprintf "%s\\n" "$1" >> "$0.log"\n')
    browser.chmod(0o755)
    return f"{browser} %s"


class FakeDesktop:
    """The tray's machine-side actions (hubd._tray.desktop.Desktop), recorded."""

    def __init__(self, *, service_installed: bool = False, starts_at_login: bool = False) -> None:
        self.service_installed = service_installed
        self.starts_at_login: bool | None = starts_at_login
        self.can_copy = True
        self.copied: list[str] = []
        self.calls: list[str] = []

    def facts(self, *, daemon_reachable: bool) -> DesktopFacts:
        return DesktopFacts(
            service_installed=self.service_installed and not daemon_reachable,
            starts_at_login=self.starts_at_login,
            can_copy=self.can_copy,
        )

    def copy(self, text: str) -> str:
        self.copied.append(text)
        return "a fake clipboard"

    def start_daemon(self) -> str:
        self.calls.append("start_daemon")
        return "started hubd (user service)"

    def set_start_at_login(self, on: bool) -> str:
        self.calls.append(f"start_at_login {on}")
        self.starts_at_login = on
        return "done"
