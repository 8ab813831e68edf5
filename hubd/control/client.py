"""The control socket's client, for the CLI and the tray: one clear error line for every failure."""

from __future__ import annotations

import http.client
import json
import os
import socket
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from hubd.control.protocol import API, peer_uid
from hubd.control.routes import BY_NAME, Where, decode_answer
from hubd.errors import (
    ControlRequestError,
    DaemonUnreachable,
    UntrustedPath,
    error_class_named,
)
from hubd.status import Status, Supervision
from hubd.timing import Timing, timing_from_env


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

    def __init__(
        self, path: Path, timeout: float | None = None, timing: Timing | None = None
    ) -> None:
        self.path = path
        # The caller's Timing (HUBD_TIMING honoured): the long operations' waits come from it.
        self.timing = timing_from_env() if timing is None else timing
        self.timeout = self.timing.control_client_timeout_s if timeout is None else timeout

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

    def call(self, operation: str, /, **fields: Any) -> Any:
        """One operation of the route table: its fields into the path, the query or the body,
        the answer decoded as the table says."""
        route = BY_NAME[operation]
        path = route.path
        query: list[str] = []
        body: dict[str, Any] = {}
        for field in route.fields:
            value = fields[field.name]
            if field.where is Where.PATH:
                path = path.replace("{" + field.name + "}", quote(value, safe=""))
            elif field.where is Where.QUERY:
                query.append(f"{field.name}={quote(str(value), safe='')}")
            elif value is not None:  # an absent optional field reads as None on the server
                body[field.name] = value
        if query:
            path += "?" + "&".join(query)
        timeout = None
        if route.timeout is not None:
            timeout = getattr(self.timing, route.timeout)
            if route.added:
                timeout += self.timeout
        send = body if route.method != "GET" else None
        return decode_answer(route, self.request(route.method, path, send, timeout=timeout))

    # The operations, typed; each is one row of `routes.ROUTES`.

    def status(self) -> Status:
        return cast(Status, self.call("status"))

    def start(self) -> Supervision:
        return cast(Supervision, self.call("start"))

    def stop(self) -> Supervision:
        return cast(Supervision, self.call("stop"))

    def restart(self) -> Supervision:
        return cast(Supervision, self.call("restart"))

    def logs(self, tail: int = 200) -> list[str]:
        return cast(list[str], self.call("logs", tail=tail))

    def list_users(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.call("list_users"))

    def add_user(
        self, name: str, password: str, admin: bool = False, node: str | None = None
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.call("add_user", name=name, password=password, admin=admin, node=node),
        )

    def remove_user(self, name: str, delete_data: bool = False) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("remove_user", name=name, delete_data=delete_data))

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("set_password", name=name, password=password))

    def unlock_user(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("unlock_user", name=name))

    def upgrade_plan(self, pull: bool = True) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("upgrade_plan", pull=pull))

    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("upgrade_apply", plan=plan))

    def backup(self, target: str | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("backup", target=target))

    def move_user(
        self, name: str, to: str, stop_server: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.call("move_user", name=name, to=to, stop_server=stop_server, dry_run=dry_run),
        )

    # -- the machines of the hub's Swarm (`hubd node`)

    def list_nodes(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.call("list_nodes"))

    def add_node(self, advertise_addr: str | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("add_node", advertise_addr=advertise_addr))

    def remove_node(self, node: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("remove_node", node=node))

    def label_node(self, node: str, label: str, remove: bool = False) -> dict[str, Any]:
        return cast(dict[str, Any], self.call("label_node", node=node, label=label, remove=remove))
