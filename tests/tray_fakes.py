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

from hubd.errors import DockerUnavailable, UserAccountError
from hubd.status import Status, Supervision

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

    def list_users(self) -> list[dict[str, Any]]:
        if self.state != "running":
            raise DockerUnavailable("the hub is not running")
        return list(self.users.values())

    def add_user(self, name: str, password: str, admin: bool) -> dict[str, Any]:
        self.calls.append(f"add_user {name}")
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

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        raise NotImplementedError


@contextmanager
def short_temp_dir(prefix: str) -> Iterator[Path]:
    """A folder under /tmp: AF_UNIX socket paths are limited to ~100 bytes, and pytest's
    tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
