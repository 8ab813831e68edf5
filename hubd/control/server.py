"""The daemon's control API: HTTP/JSON over a Unix socket, for the CLI and the tray.

Nothing listens on the network. The socket file is the owner's alone (0600), or the owner's
and one group's (0660) for the system service; on Linux the peer's credentials are checked
again on every connection, so a socket left with loose permissions still refuses strangers.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import queue
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from hubd.control.client import ControlClient
from hubd.control.protocol import (
    API,
    END,
    ERROR,
    KIND,
    MAX_BODY_BYTES,
    STREAM_CONTENT_TYPE,
    TEXT,
    peer_uid,
)
from hubd.control.routes import ROUTES, Field, Kind, Route, Stream, Streamed, Where, encode_answer
from hubd.errors import (
    DockerUnavailable,
    HubdError,
    NodeError,
    UsageError,
    UserAccountError,
)
from hubd.paths import prepare_runtime_dir
from hubd.status import Status, Supervision
from hubd.timing import Timing

log = logging.getLogger(__name__)

# A streamed answer's records waiting for a client that does not read, at most.
STREAM_QUEUE_RECORDS = 1000


class ControlBackend(Protocol):
    """What the daemon offers on the socket: one handler per operation of `routes.ROUTES`,
    named as the operation, its parameters named as the route's fields (a unit test checks)."""

    def status(self) -> Status: ...
    def start(self) -> Supervision: ...
    def stop(self) -> Supervision: ...
    def restart(self) -> Supervision: ...
    def logs(self, tail: int) -> list[str]: ...
    def daemon_logs(self, tail: int) -> list[str]: ...
    def follow_logs(self, tail: int) -> Stream: ...
    def follow_daemon_logs(self, tail: int) -> Stream: ...
    def reload_config(self, config_file: str) -> dict[str, Any]: ...
    def progress(self, since: int) -> dict[str, Any]: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def add_user(
        self, name: str, password: str, admin: bool, node: str | None = None
    ) -> dict[str, Any]: ...
    def remove_user(self, name: str, delete_data: bool) -> dict[str, Any]: ...
    def set_password(self, name: str, password: str) -> dict[str, Any]: ...
    def unlock_user(self, name: str) -> dict[str, Any]: ...
    def upgrade_plan(self, pull: bool) -> dict[str, Any]: ...
    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]: ...
    def backup(self, target: str | None) -> dict[str, Any]: ...
    # The machines of the hub's Swarm (`hubd node`).
    def list_nodes(self) -> list[dict[str, Any]]: ...
    def add_node(self, advertise_addr: str | None) -> dict[str, Any]: ...
    def remove_node(self, node: str) -> dict[str, Any]: ...
    def label_node(self, node: str, label: str, remove: bool) -> dict[str, Any]: ...
    def move_user(self, name: str, to: str, stop_server: bool, dry_run: bool) -> dict[str, Any]: ...


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status_for(error: HubdError) -> HTTPStatus:
    if isinstance(error, (UserAccountError, UsageError, NodeError)):
        return HTTPStatus.BAD_REQUEST
    if isinstance(error, DockerUnavailable):
        return HTTPStatus.SERVICE_UNAVAILABLE
    return HTTPStatus.INTERNAL_SERVER_ERROR


# ---------------------------------------------------------------- server


def _uid_allowed(uid: int, group: str | None) -> bool:
    if uid in (0, os.geteuid()):
        return True
    if group is None:
        return False
    try:
        import pwd

        entry = grp.getgrnam(group)
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_name in entry.gr_mem or user.pw_gid == entry.gr_gid


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"
    # A garbled request line still gets a status line (http.server would answer as HTTP/0.9).
    default_request_version = "HTTP/1.0"

    # -- plumbing

    def setup(self) -> None:
        # A client that sends nothing for this long is dropped, so a stuck caller holds no
        # thread.
        self.request.settimeout(self.server.timing.control_request_read_timeout_s)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, bad headers) as JSON too."""
        self.close_connection = True
        self._send(
            HTTPStatus(code), {"error": message or HTTPStatus(code).phrase, "kind": "UsageError"}
        )

    def _send(self, status: HTTPStatus, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_json(self) -> dict[str, Any]:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return {}
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY_BYTES} bytes"
            )
        raw = self.rfile.read(length)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "request body is not JSON") from None
        if not isinstance(data, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        return data

    def _dispatch(self, method: str) -> None:
        try:
            uid = peer_uid(self.connection)
            if uid is not None and not _uid_allowed(uid, self.server.group):
                raise BadRequest(HTTPStatus.FORBIDDEN, "this user may not control hubd")
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            body = self._read_json() if method in ("POST", "PUT", "DELETE") else {}
            route = self.server.router.resolve(method, url.path)
            answer = route(body, query)
            if isinstance(answer, Streamed):
                self._stream(answer.stream)
            else:
                self._send(HTTPStatus.OK, answer)
        except BadRequest as exc:
            self._send(exc.status, {"error": str(exc), "kind": "UsageError"})
        except HubdError as exc:
            self._send(_status_for(exc), {"error": str(exc), "kind": type(exc).__name__})
        except Exception as exc:  # the daemon must never die of one request
            log.exception("control request %s %s failed", method, self.path)
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"internal error: {exc}", "kind": "ControlRequestError"},
            )

    def _stream(self, stream: Stream) -> None:
        """Send `stream` as it comes (protocol.py: one JSON object a line), until it ends, the
        client goes away or the server closes; the stream is closed in every case.

        The stream is read on a thread of its own, so that this one can send keep-alives
        while it has nothing: writing one is how a client that went away is found (an idle
        hub's log may say nothing for hours, and its stream would hold this thread as long).
        Writes wait as long as the client does not read (a follower suspended with Ctrl-Z
        goes on after `fg`): on a Unix socket a client that is gone is an error at once.
        """
        self.close_connection = True
        self.connection.settimeout(None)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", STREAM_CONTENT_TYPE)
        self.send_header("Connection", "close")
        self.end_headers()
        wait_s = self.server.timing.control_stream_keepalive_s
        # Bounded: while the client does not read, the reader waits too (and so the engine).
        records: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=STREAM_QUEUE_RECORDS)
        done = threading.Event()

        def put(record: dict[str, Any]) -> None:
            while not done.is_set():
                with contextlib.suppress(queue.Full):
                    records.put(record, timeout=wait_s)
                    return

        def read() -> None:
            try:
                for text in stream:
                    if done.is_set():
                        return
                    put({TEXT: text})
                put({END: "the stream ended"})
            except HubdError as exc:
                put({ERROR: str(exc), KIND: type(exc).__name__})
            except Exception as exc:  # the engine went away mid-stream, say
                if not done.is_set():
                    log.debug("control: a stream failed", exc_info=True)
                    put({ERROR: f"the log stream broke: {exc}", KIND: "DockerUnavailable"})

        reader = threading.Thread(target=read, name="hubd-control-stream", daemon=True)
        self.server.streams.add(records)
        reader.start()
        try:
            waiting: dict[str, Any] | None = None
            while True:
                record, waiting = waiting, None
                if record is None:
                    try:
                        record = records.get(timeout=wait_s)
                    except queue.Empty:
                        record = {}  # a keep-alive
                if TEXT in record:  # and the text that came meanwhile, in one write
                    texts, waiting = _drain_text(records)
                    record = {TEXT: record[TEXT] + "".join(texts)}
                self.wfile.write(json.dumps(record).encode() + b"\n")
                self.wfile.flush()
                if END in record or ERROR in record:
                    return
        except OSError:  # the client went away: nothing more to send
            log.debug("control: a stream's client went away")
        finally:
            done.set()
            try:
                stream.close()
            except Exception:  # closing what already ended: nothing to undo
                log.debug("control: closing a stream failed", exc_info=True)
            with self.server.streams_changed:
                self.server.streams.discard(records)
                self.server.streams_changed.notify_all()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


def _drain_text(records: queue.Queue[dict[str, Any]]) -> tuple[list[str], dict[str, Any] | None]:
    """The text records already waiting, taken off the queue, and the first record that is
    not text (the end, an error) if one came after them."""
    texts: list[str] = []
    while True:
        try:
            record = records.get_nowait()
        except queue.Empty:
            return texts, None
        if TEXT not in record:
            return texts, record
        texts.append(str(record[TEXT]))


def _decode(field: Field, body: dict[str, Any], query: dict[str, list[str]]) -> Any:
    """One request field, checked against its kind (a clear 400 when it is wrong)."""
    key, kind = field.name, field.kind
    if kind is Kind.TAIL:
        try:
            tail = int(query.get(key, ["200"])[0])
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"{key} must be a number") from None
        return max(1, min(tail, 10_000))
    if kind is Kind.COUNT:
        try:
            return max(0, int(query.get(key, ["0"])[0]))
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"{key} must be a number") from None
    if kind is Kind.FLAG:
        if key in body:
            if not isinstance(body[key], bool):
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"field '{key}' must be true or false")
            return bool(body[key])
        if field.where is Where.BODY_OR_QUERY:
            return query.get(key, ["0"])[0] in ("1", "true", "yes")
        return False
    value = body.get(key)
    if kind is Kind.OBJECT:
        if not isinstance(value, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"field '{key}' must be an object")
        return value
    if kind is Kind.OPTIONAL_TEXT:
        if value is not None and not isinstance(value, str):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"field '{key}' must be a string")
        return value or None
    if not isinstance(value, str):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"field '{key}' must be a string")
    return value


Call = Callable[[dict[str, Any], dict[str, list[str]]], Any]


class Router:
    """The route table (`routes.ROUTES`) bound to a backend, built once per server."""

    def __init__(self, backend: ControlBackend, routes: tuple[Route, ...] = ROUTES) -> None:
        self.backend = backend
        self._routes = routes

    def resolve(self, method: str, path: str) -> Call:
        if not path.startswith(API + "/"):
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        parts = [unquote(p) for p in path[len(API) + 1 :].split("/") if p]
        found = False
        for route in self._routes:
            captured = _match(route.segments, parts)
            if captured is None:
                continue
            found = True
            if route.method == method:
                return self._bind(route, captured)
        if not found:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        raise BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed on {path}")

    def _bind(self, route: Route, captured: dict[str, str]) -> Call:
        handler = getattr(self.backend, route.name)

        def call(body: dict[str, Any], query: dict[str, list[str]]) -> Any:
            kwargs = {
                field.name: captured[field.name]
                if field.where is Where.PATH
                else _decode(field, body, query)
                for field in route.fields
            }
            return encode_answer(route, handler(**kwargs))

        return call


def _match(pattern: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    """The path's `{name}` segments by name, or None when the path is not this pattern."""
    if len(pattern) != len(parts):
        return None
    captured: dict[str, str] = {}
    for want, got in zip(pattern, parts, strict=True):
        if want.startswith("{") and want.endswith("}"):
            captured[want[1:-1]] = got
        elif want != got:
            return None
    return captured


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(
        self,
        path: Path,
        backend: ControlBackend,
        group: str | None = None,
        *,
        timing: Timing,
    ) -> None:
        self.path = path
        self.group = group
        self.timing = timing
        self.router = Router(backend)
        prepare_runtime_dir(path.parent)
        _remove_stale_socket(path, timing)
        # Create the socket with no access for others from the first instant.
        old_umask = os.umask(0o177 if group is None else 0o117)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old_umask)
        self._thread: threading.Thread | None = None
        self._closed = False
        # The queues of the streamed answers being sent: closing tells each of them.
        self.streams: set[queue.Queue[dict[str, Any]]] = set()
        self.streams_changed = threading.Condition()
        try:
            self.set_group(group)
        except UsageError:
            self.server_close()
            raise

    def set_group(self, group: str | None) -> None:
        """Give `group` access to the socket (0660), or only the owner (0600) with None.
        A SIGHUP applies a changed `control_group` this way, without a new socket."""
        gid = -1
        if group is not None:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise UsageError(
                    f"control_group: no group named {group!r} on this machine"
                ) from None
        os.chown(self.path, -1, gid if group is not None else os.getgid())
        os.chmod(self.path, 0o660 if group is not None else 0o600)
        self.group = group

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is not news; the daemon carries on.
        log.debug("control connection failed", exc_info=True)

    def start(self) -> None:
        # Requests are served at once whatever the poll interval: it only bounds how late
        # the loop sees a shutdown, and close() wakes it for that (_stop_serving).
        self._thread = threading.Thread(
            target=self.serve_forever,
            args=(self.timing.control_server_poll_s,),
            name="hubd-control",
            daemon=True,
        )
        self._thread.start()

    def _stop_serving(self) -> None:
        """socketserver's shutdown(), without waiting out the loop's poll interval: a
        connection of our own wakes its select() until it has seen the request (the first
        may come before the request is set; the loop then serves it as an empty request)."""
        stopping = threading.Thread(target=self.shutdown, name="hubd-control-stop", daemon=True)
        stopping.start()
        while stopping.is_alive():
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as poke:
                poke.connect(str(self.path))
            stopping.join(self.timing.shutdown_deadline_poll_s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for records in list(self.streams):
            with contextlib.suppress(queue.Full):  # a client not reading: cut off below
                records.put_nowait({ERROR: "hubd stopped", KIND: "DaemonUnreachable"})
        # Their handlers send that at once: wait (briefly) so that a follower reads "hubd
        # stopped" rather than a socket closed by the process's exit.
        with self.streams_changed:
            self.streams_changed.wait_for(
                lambda: not self.streams, self.timing.control_request_read_timeout_s
            )
        if self._thread is not None:
            self._stop_serving()
            self._thread.join(timeout=5)
        self.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _remove_stale_socket(path: Path, timing: Timing) -> None:
    """Remove a socket file left by a daemon that died; refuse if a live daemon owns it."""
    if not path.exists():
        return
    if not ControlClient(path, timing=timing).is_available():
        path.unlink()
        return
    raise UsageError(f"another hubd daemon is already running (control socket {path})")
