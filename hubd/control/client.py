"""The control socket's client, for the CLI and the tray: one clear error line for every failure."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

from hubd.control.protocol import API, END, ERROR, KIND, TEXT, peer_uid
from hubd.control.routes import BY_NAME, Where, decode_answer
from hubd.errors import (
    ControlRequestError,
    DaemonUnreachable,
    UntrustedPath,
    error_class_named,
)
from hubd.status import Status, Supervision
from hubd.timing import Timing, timing_from_env


class _BadAnswer(Exception):
    """The peer's bytes are not an HTTP response."""


# The largest status line or header line accepted (http.client's limit too).
_MAX_LINE = 65536


def _exchange(
    path: Path, timeout: float, method: str, target: str, payload: bytes | None
) -> tuple[int, str, bytes]:
    """One HTTP/1.1 request over the Unix socket, answered and closed: (status, reason, body).

    Written out rather than with http.client: that module imports ssl and email, about a
    third of `hubd status`'s start, for a server (hubd's own) that always answers with a
    Content-Length and closes on `Connection: close`.
    """
    sock = _send(path, timeout, method, target, payload)
    try:
        with sock.makefile("rb") as answer:
            status, reason, length = _read_head(answer)
            body = answer.read(length) if length is not None else answer.read()
            if length is not None and len(body) != length:
                raise _BadAnswer(f"the answer ended after {len(body)} of {length} bytes")
        return status, reason, body
    finally:
        sock.close()


def _send(
    path: Path, timeout: float, method: str, target: str, payload: bytes | None
) -> socket.socket:
    """Connected to the daemon (checked to be hubd's), the request sent: the socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        check_server(sock, path)
        head = f"{method} {target} HTTP/1.1\r\nHost: hubd\r\nConnection: close\r\n"
        if payload is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        sock.sendall(head.encode("latin-1") + b"\r\n" + (payload or b""))
    except BaseException:
        sock.close()
        raise
    return sock


def _read_head(answer: BinaryIO) -> tuple[int, str, int | None]:
    """The status line and headers: (status, reason, Content-Length or None)."""
    try:
        status_line = answer.readline(_MAX_LINE + 1)
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _BadAnswer(f"not an HTTP status line: {status_line[:80]!r}")
        length: int | None = None
        while True:
            line = answer.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
    except ValueError as exc:
        raise _BadAnswer(str(exc)) from None
    return int(parts[1]), parts[2].strip() if len(parts) > 2 else "", length


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


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ControlRequestError("hubd answered with something that is not JSON") from None


def _refusal(data: Any, reason: str, raw: bytes) -> Exception:
    """The daemon's error answer as the error class it names (one line)."""
    message = data.get("error", reason) if isinstance(data, dict) else raw
    kind = data.get("kind", "") if isinstance(data, dict) else ""
    return error_class_named(str(kind))(str(message))


def _records(answer: BinaryIO, silence_s: float) -> Iterator[str]:
    """A streamed answer's text, until its last record (protocol.py)."""
    while True:
        try:
            line = answer.readline()
        except TimeoutError:
            raise DaemonUnreachable(
                f"hubd stopped answering (nothing for {silence_s:g} s while following)"
            ) from None
        except OSError as exc:
            raise DaemonUnreachable(f"hubd went away while following: {exc}") from None
        if not line.endswith(b"\n"):  # closed without its last record
            raise DaemonUnreachable("hubd went away while following (its control socket closed)")
        try:
            record = json.loads(line)
        except ValueError:
            raise ControlRequestError("hubd sent something that is not JSON") from None
        if not isinstance(record, dict):
            raise ControlRequestError("hubd sent something that is not a JSON object")
        if TEXT in record:
            yield str(record[TEXT])
        elif END in record:
            return
        elif ERROR in record:
            raise error_class_named(str(record.get(KIND, "")))(str(record[ERROR]))


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
        payload = json.dumps(body).encode() if body is not None else None
        try:
            status, reason, raw = _exchange(
                self.path, timeout or self.timeout, method, API + path, payload
            )
        except (OSError, _BadAnswer) as exc:
            raise self._unreachable(exc) from None
        data = _json(raw)
        if status != 200:
            raise _refusal(data, reason, raw)
        return data

    def _unreachable(self, exc: Exception) -> DaemonUnreachable:
        """A failure to reach the daemon, as the one line that says what to do."""
        if isinstance(exc, FileNotFoundError):
            return DaemonUnreachable(
                f"hubd is not running (no control socket at {self.path}); "
                "start it with `hubd run` or `hubd service install`"
            )
        if isinstance(exc, PermissionError):
            return DaemonUnreachable(
                f"no permission to use {self.path}: run as its owner, or join the group "
                "set as control_group"
            )
        if isinstance(exc, ConnectionRefusedError):
            return DaemonUnreachable(f"hubd is not running (stale control socket at {self.path})")
        return DaemonUnreachable(f"hubd's control socket did not answer: {exc}")

    def stream(self, operation: str, /, **fields: Any) -> Generator[str, None, None]:
        """A streamed operation (routes.Answer.STREAM): its text as it comes, until the daemon
        ends it. A refusal raises when the iteration begins (before any text), as `call`
        does; a daemon that goes away or falls silent mid-stream raises DaemonUnreachable.
        Closing the iterator (or Ctrl-C) hangs up, and the daemon stops sending."""
        method, path, _body, _timeout = self._request_for(operation, fields)
        silence_s = self.timing.control_stream_silence_s
        try:
            sock = _send(self.path, self.timeout, method, API + path, None)
        except (OSError, _BadAnswer) as exc:
            raise self._unreachable(exc) from None
        try:
            with sock.makefile("rb") as answer:
                try:
                    status, reason, length = _read_head(answer)
                    if status != 200:
                        raw = answer.read(length) if length is not None else answer.read()
                        raise _refusal(_json(raw), reason, raw)
                    sock.settimeout(silence_s)  # keep-alives come well within it
                except (OSError, _BadAnswer) as exc:
                    raise self._unreachable(exc) from None
                yield from _records(answer, silence_s)
        finally:
            sock.close()

    def call(self, operation: str, /, **fields: Any) -> Any:
        """One operation of the route table: its fields into the path, the query or the body,
        the answer decoded as the table says."""
        method, path, body, timeout = self._request_for(operation, fields)
        return decode_answer(BY_NAME[operation], self.request(method, path, body, timeout))

    def _request_for(
        self, operation: str, fields: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any] | None, float | None]:
        """The request of one operation: method, path and query, body, client wait."""
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
        return route.method, path, body if route.method != "GET" else None, timeout

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

    def daemon_logs(self, tail: int = 200) -> list[str]:
        """The daemon's own log (its log file), for people who may use the socket."""
        return cast(list[str], self.call("daemon_logs", tail=tail))

    def follow_logs(self, tail: int = 200) -> Generator[str, None, None]:
        """The hub's log from `tail` lines back, as it comes (see `stream`)."""
        return self.stream("follow_logs", tail=tail)

    def follow_daemon_logs(self, tail: int = 200) -> Generator[str, None, None]:
        """hubd's own log from `tail` lines back, as it comes (see `stream`)."""
        return self.stream("follow_daemon_logs", tail=tail)

    def reload_config(self, config_file: str) -> dict[str, Any]:
        """Read the config file again and apply it, as SIGHUP does; answered once applied.
        `config_file` is the file the caller changed: the daemon refuses if it reads another."""
        return cast(dict[str, Any], self.call("reload_config", config_file=config_file))

    def progress(self, since: int = 0) -> dict[str, Any]:
        """{"next": N, "entries": [...]}: the daemon's progress (steps, builds, pulls)
        numbered from `since` on; ask again with `since=next`."""
        return cast(dict[str, Any], self.call("progress", since=since))

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
