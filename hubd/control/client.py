"""The control socket's client, for the CLI and the tray: one clear error line for every failure."""

from __future__ import annotations

import http.client
import json
import os
import socket
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hubd.control.protocol import API, peer_uid
from hubd.errors import (
    ControlRequestError,
    DaemonUnreachable,
    UntrustedPath,
    error_class_named,
)
from hubd.status import Status, Supervision
from hubd.timing import Timing


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("hubd", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.socket_path))
            check_server(sock, self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def check_server(sock: socket.socket, path: Path) -> None:
    """Before anything is sent (passwords travel here): the process listening must be this
    user's own daemon or root's (the system service), not another local account's."""
    uid = peer_uid(sock)
    if uid is None:  # no SO_PEERCRED (macOS): the socket file's owner is the next best thing
        uid = os.lstat(path).st_uid
    if uid not in (0, os.geteuid()):
        raise UntrustedPath(
            f"the control socket {path} is served by another local account (uid {uid}), not "
            f"by hubd: nothing was sent. Remove {path.parent} and start hubd again"
        )


class ControlClient:
    """Talks to a running `hubd run`. Every failure is a HubdError with one clear line."""

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = path
        self.timeout = Timing().control_client_timeout_s if timeout is None else timeout

    def is_available(self) -> bool:
        """Whether a daemon listens on the socket (a connect, not a request: status may be slow)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(str(self.path))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        conn = _UnixConnection(self.path, timeout or self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, API + path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except FileNotFoundError:
            raise DaemonUnreachable(
                f"hubd is not running (no control socket at {self.path}); "
                "start it with `hubd run` or `hubd service install`"
            ) from None
        except PermissionError:
            raise DaemonUnreachable(
                f"no permission to use {self.path}: run as its owner, or join the group "
                "set as control_group"
            ) from None
        except ConnectionRefusedError:
            raise DaemonUnreachable(
                f"hubd is not running (stale control socket at {self.path})"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnreachable(f"hubd's control socket did not answer: {exc}") from None
        finally:
            conn.close()
        try:
            data = json.loads(raw)
        except ValueError:
            raise ControlRequestError("hubd answered with something that is not JSON") from None
        if response.status != HTTPStatus.OK:
            message = data.get("error", response.reason) if isinstance(data, dict) else raw
            kind = data.get("kind", "") if isinstance(data, dict) else ""
            raise error_class_named(str(kind))(str(message))
        return data

    def status(self) -> Status:
        return Status.from_json(self.request("GET", "/status"))

    def start(self) -> Supervision:
        return Supervision.from_json(self.request("POST", "/start"))

    def stop(self) -> Supervision:
        return Supervision.from_json(self.request("POST", "/stop"))

    def restart(self) -> Supervision:
        return Supervision.from_json(self.request("POST", "/restart"))

    def logs(self, tail: int = 200) -> list[str]:
        return list(self.request("GET", f"/logs?tail={tail}")["lines"])

    def daemon_logs(self, tail: int = 200) -> list[str]:
        """The daemon's own log (its log file), for people who may use the socket."""
        return list(self.request("GET", f"/logs/daemon?tail={tail}")["lines"])

    def reload_config(self, config_file: str) -> dict[str, Any]:
        """Read the config file again and apply it, as SIGHUP does; answered once applied.
        `config_file` is the file the caller changed: the daemon refuses if it reads another."""
        return dict(self.request("POST", "/config/reload", {"config_file": config_file}))

    def progress(self, since: int = 0) -> dict[str, Any]:
        """{"next": N, "lines": [...]}: the daemon's progress lines (pulls, builds, starts)
        numbered from `since` on; ask again with `since=next`."""
        return dict(self.request("GET", f"/progress?since={since}"))

    def list_users(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/users")["users"])

    def add_user(
        self, name: str, password: str, admin: bool = False, node: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "password": password, "admin": admin}
        if node is not None:
            body["node"] = node
        return dict(self.request("POST", "/users", body))

    def remove_user(self, name: str, delete_data: bool = False) -> dict[str, Any]:

        return dict(
            self.request("DELETE", f"/users/{quote(name, safe='')}", {"delete_data": delete_data})
        )

    def unlock_user(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/users/{quote(name, safe='')}/unlock", {}))

    def upgrade_plan(self, pull: bool = True) -> dict[str, Any]:
        # Pulling and building images can take many minutes: make this client with
        # Timing.upgrade_request_timeout_s.
        return dict(self.request("POST", "/upgrade/plan", {"pull": pull}))

    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/upgrade/apply", {"plan": plan}))

    def set_password(self, name: str, password: str) -> dict[str, Any]:

        return dict(
            self.request("POST", f"/users/{quote(name, safe='')}/password", {"password": password})
        )

    def backup(self, target: str | None = None) -> dict[str, Any]:
        # A first backup of big volumes takes a while; the daemon answers when it is done.
        timeout = Timing().backup_request_timeout_s
        return dict(self.request("POST", "/backup", {"target": target}, timeout=timeout))

    # -- the machines of the hub's Swarm (`hubd node`)

    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/nodes")["nodes"])

    def add_node(self, advertise_addr: str | None = None) -> dict[str, Any]:
        return dict(self.request("POST", "/nodes", {"advertise_addr": advertise_addr}))

    def remove_node(self, node: str) -> dict[str, Any]:
        # Draining waits for the node's tasks to leave, up to its own deadline.
        timing = Timing()
        timeout = self.timeout + timing.node_drain_deadline_s
        return dict(self.request("DELETE", f"/nodes/{quote(node, safe='')}", {}, timeout=timeout))

    def label_node(self, node: str, label: str, remove: bool = False) -> dict[str, Any]:
        return dict(
            self.request(
                "POST", f"/nodes/{quote(node, safe='')}/labels", {"label": label, "remove": remove}
            )
        )

    def move_user(
        self, name: str, to: str, stop_server: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        # Copying someone's files between machines takes a while; answered when done.
        timeout = Timing().move_request_timeout_s
        body = {"to": to, "stop_server": stop_server, "dry_run": dry_run}
        return dict(
            self.request("POST", f"/users/{quote(name, safe='')}/move", body, timeout=timeout)
        )
