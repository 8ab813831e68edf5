"""The control API over a real Unix socket, with a small in-memory backend."""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubd.control import ControlClient, ControlServer
from hubd.control.protocol import MAX_BODY_BYTES
from hubd.control.routes import Stream
from hubd.errors import (
    BackupError,
    DaemonUnreachable,
    NodeError,
    StackError,
    UsageError,
    UserAccountError,
)
from hubd.stack.upgrade import UpgradeRolledBack
from hubd.status import Status, Supervision
from hubd.timing import Timing
from tests.as_nobody import as_nobody


class ScriptedStream:
    """A followed log: its first chunks, then whatever the test feeds (a str, an exception
    to raise, or None to end), blocking in between like an engine's log stream."""

    def __init__(self, first: list[str]) -> None:
        self.feed: queue.Queue[str | BaseException | None] = queue.Queue()
        for chunk in first:
            self.feed.put(chunk)
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[str]:
        while not self.closed.is_set():
            try:
                item = self.feed.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()


class Backend:
    def __init__(self) -> None:
        self.state = "running"
        self.users: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}  # hostname -> node

    def status(self) -> Status:
        return Status(state=self.state)

    def start(self) -> Supervision:
        self.state = "running"
        return Supervision(state=self.state)

    def stop(self) -> Supervision:
        self.state = "stopped"
        return Supervision(state=self.state)

    def restart(self) -> Supervision:
        raise RuntimeError("boom")  # an unexpected failure must not kill the server

    def logs(self, tail: int) -> list[str]:
        return [f"line {i}" for i in range(tail)]

    def daemon_logs(self, tail: int) -> list[str]:
        return [f"hubd line {i}" for i in range(tail)]

    def follow_logs(self, tail: int) -> Stream:
        if self.state == "stopped":
            raise StackError("there is no hub container yet: run `hubd up`")
        return ScriptedStream([f"line {i}\n" for i in range(tail)])

    def follow_daemon_logs(self, tail: int) -> Stream:
        return ScriptedStream([f"hubd line {i}\n" for i in range(tail)])

    def reload_config(self, config_file: str) -> dict[str, Any]:
        return {"config_file": config_file, "notes": []}

    def progress(self, since: int) -> dict[str, Any]:
        return {"next": since + 1, "entries": [{"step": f"entry {since}"}]}

    def list_users(self) -> list[dict[str, Any]]:
        return list(self.users.values())

    def add_user(
        self, name: str, password: str, admin: bool, node: str | None = None
    ) -> dict[str, Any]:
        if name in self.users:
            raise UserAccountError(f"user {name!r} already exists")
        if node is not None:
            self._node(node)["homes"].append(name)
        self.users[name] = {"name": name, "admin": admin}
        return self.users[name]

    def remove_user(self, name: str, delete_data: bool) -> dict[str, Any]:
        self.users.pop(name)
        return {"name": name, "data_deleted": delete_data}

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        return {"name": name}

    def unlock_user(self, name: str) -> dict[str, Any]:
        return {"name": name, "was_locked": name in self.users}

    def upgrade_plan(self, pull: bool) -> dict[str, Any]:
        return {"up_to_date": True, "pull": pull}

    def upgrade_apply(self, plan: dict[str, Any]) -> dict[str, Any]:
        raise UpgradeRolledBack(f"the upgrade was rolled back: {plan['why']}")

    def backup(self, target: str | None) -> dict[str, Any]:
        if target == "/unplugged":
            raise BackupError("backup target /unplugged does not exist")
        return {"snapshot": "abcd1234", "target": target or "/default"}

    def _node(self, name: str) -> dict[str, Any]:
        if name not in self.nodes:
            raise NodeError(f"no node {name!r}")
        return self.nodes[name]

    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.nodes.values())

    def add_node(self, advertise_addr: str | None) -> dict[str, Any]:
        created = not self.nodes
        self.nodes.setdefault("main", {"hostname": "main", "homes": [], "labels": []})
        address = advertise_addr or "192.0.2.1"
        command = f"docker swarm join --token T {address}:2377"
        return {"join_command": command, "address": address, "created": created}

    def remove_node(self, node: str) -> dict[str, Any]:
        if self._node(node)["homes"]:
            raise NodeError(f"people have their files on {node}")
        del self.nodes[node]
        return {"node": node}

    def label_node(self, node: str, label: str, remove: bool) -> dict[str, Any]:
        labels = self._node(node)["labels"]
        if remove:
            labels.remove(label)
        else:
            labels.append(label)
        return {"node": node, "labels": labels}

    def move_user(self, name: str, to: str, stop_server: bool, dry_run: bool) -> dict[str, Any]:
        if to == "nowhere":
            raise UsageError("there is no node 'nowhere'; the nodes are: node1 (abc)")
        return {"user": name, "to": to, "stop_server": stop_server, "dry_run": dry_run}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ControlServer, ControlClient, Backend]]:
    backend = Backend()
    server = ControlServer(tmp_path / "run" / "control.sock", backend, timing=Timing())
    server.start()
    try:
        yield server, ControlClient(server.path, timeout=5), backend
    finally:
        server.close()


def raw_request(path: Path, data: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
    return b"".join(chunks).decode(errors="replace")


def test_operations_round_trip(server: tuple[ControlServer, ControlClient, Backend]) -> None:
    _, client, backend = server
    assert client.status() == Status(state="running")
    assert client.stop().state == "stopped" and backend.state == "stopped"
    assert client.start().state == "running"
    assert client.logs(3) == ["line 0", "line 1", "line 2"]
    client.add_user("ann", "pw-pw-pw-pw", admin=True)
    assert client.list_users() == [{"name": "ann", "admin": True}]
    assert client.unlock_user("ann") == {"name": "ann", "was_locked": True}
    assert client.remove_user("ann", delete_data=True)["data_deleted"] is True


def test_node_operations_round_trip_and_refusals_keep_their_kind(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _, client, backend = server
    assert client.list_nodes() == []
    added = client.add_node("198.51.100.7")
    assert added == {
        "join_command": "docker swarm join --token T 198.51.100.7:2377",
        "address": "198.51.100.7",
        "created": True,
    }
    assert client.add_node()["created"] is False
    backend.nodes["node/2"] = {"hostname": "node/2", "homes": [], "labels": []}
    # A node name travels in the path: quoted by the client, unquoted by the server.
    assert client.label_node("node/2", "gpu")["labels"] == ["gpu"]
    assert client.label_node("node/2", "gpu", remove=True)["labels"] == []
    client.add_user("cy", "pw-pw-pw-pw", node="node/2")
    assert backend.nodes["node/2"]["homes"] == ["cy"]
    with pytest.raises(NodeError, match="people have their files on node/2"):
        client.remove_node("node/2")
    with pytest.raises(NodeError, match="no node 'gone'"):
        client.label_node("gone", "gpu")
    with pytest.raises(UsageError, match="'label' must be a string"):
        client.request("POST", "/nodes/main/labels", {"label": 3})
    with pytest.raises(UsageError, match="'node' must be a string"):
        client.request("POST", "/users", {"name": "x", "password": "pw-pw-pw-pw", "node": 1})
    with pytest.raises(UsageError, match="GET not allowed"):
        client.request("GET", "/nodes/main")
    backend.nodes["node/2"]["homes"].clear()
    assert client.remove_node("node/2") == {"node": "node/2"}
    assert [n["hostname"] for n in client.list_nodes()] == ["main"]


def test_upgrade_round_trip_and_its_rollback_error_keeps_its_kind(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _, client, _ = server
    assert client.upgrade_plan(pull=False) == {"up_to_date": True, "pull": False}
    with pytest.raises(UpgradeRolledBack, match="rolled back: the gate"):
        client.upgrade_apply({"why": "the gate"})
    with pytest.raises(UsageError, match="'plan' must be an object"):
        client.request("POST", "/upgrade/apply", {"plan": "x"})


def test_move_round_trip_and_its_refusal(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _, client, _ = server
    assert client.move_user("ann", "node2", dry_run=True) == {
        "user": "ann",
        "to": "node2",
        "stop_server": False,
        "dry_run": True,
    }
    assert client.move_user("a.b", "node2", stop_server=True)["stop_server"] is True
    with pytest.raises(UsageError, match="no node 'nowhere'"):
        client.move_user("ann", "nowhere")
    with pytest.raises(UsageError, match="'to' must be a string"):
        client.request("POST", "/users/ann/move", {})


def test_backend_errors_keep_their_kind(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _, client, _ = server
    client.add_user("bo", "pw-pw-pw-pw")
    with pytest.raises(UserAccountError, match="already exists"):
        client.add_user("bo", "pw-pw-pw-pw")


def test_unexpected_failure_is_a_500_and_the_server_lives_on(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _, client, _ = server
    with pytest.raises(Exception, match="internal error: boom"):
        client.restart()
    assert client.status().state == "running"


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        (b"DELETE /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "405"),
        (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope", "400"),
        (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]", "400"),
        (b'POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{"name": 1}', "400"),
        (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", "413"),
        (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400"),
        (b"GET /v1/logs?tail=many HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        (b"\x16\x03\x01garbage\r\n\r\n", "400"),
    ],
)
def test_garbage_gets_a_clear_4xx(
    server: tuple[ControlServer, ControlClient, Backend], request_bytes: bytes, status: str
) -> None:
    srv, client, _ = server
    answer = raw_request(srv.path, request_bytes)
    assert answer.split(" ", 2)[1] == status, answer
    assert client.status().state == "running"


def test_oversized_body_limit_is_64k() -> None:
    assert MAX_BODY_BYTES == 64 * 1024


def test_socket_is_private(server: tuple[ControlServer, ControlClient, Backend]) -> None:
    srv, _, _ = server
    assert srv.path.stat().st_mode & 0o777 == 0o600


def _request_as_nobody(path: Path) -> str:
    """Ask for the status as the user `nobody`."""

    def request() -> str:
        try:
            return raw_request(path, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError as exc:
            return f"OSError {exc.strerror}"

    return as_nobody(request)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI is root)")
def test_a_stranger_is_refused(server: tuple[ControlServer, ControlClient, Backend]) -> None:
    srv, _, _ = server
    # Let the stranger reach the socket file itself, so the socket's own checks are tested.
    for folder in [srv.path.parent, *srv.path.parent.parents]:
        folder.chmod(folder.stat().st_mode | 0o005)
    assert _request_as_nobody(srv.path) == "OSError Permission denied"
    # Even with loose file permissions the peer's uid is checked.
    srv.path.chmod(0o666)
    answer = _request_as_nobody(srv.path)
    assert answer.startswith("HTTP/1.1 403"), answer


def test_client_without_daemon_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="hubd run"):
        ControlClient(tmp_path / "none.sock").status()
    assert ControlClient(tmp_path / "none.sock").is_available() is False


def test_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a daemon that died
    first = ControlServer(path, Backend(), timing=Timing())
    first.start()
    try:
        with pytest.raises(UsageError, match="already running"):
            ControlServer(path, Backend(), timing=Timing())
    finally:
        first.close()
        first.close()  # safe twice
    assert not path.exists()


def test_closing_does_not_wait_out_the_idle_loop_s_poll(tmp_path: Path) -> None:
    # An hour between the accept loop's looks at a shutdown: close() wakes it itself, so it
    # ends at once (without that it would hang here for the hour).
    slow = Timing(control_server_poll_s=3600)
    server = ControlServer(tmp_path / "control.sock", Backend(), timing=slow)
    server.start()
    assert ControlClient(server.path, timeout=5).status()
    closing = threading.Thread(target=server.close, daemon=True)
    closing.start()
    closing.join(60)
    assert not closing.is_alive()
    assert not server.path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI is root)")
def test_a_person_without_a_daemon_reaches_the_system_service_once_its_group_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI of a non-root person falls back to the system service's socket, and
    a `control_group` applied by SIGHUP (set_group) opens that socket to them."""
    import grp

    import hubd.service.systemd  # noqa: F401  (the CLI asks it; nobody may not read it)
    from hubd.cli import context as context_module
    from hubd.paths import Paths

    group = grp.getgrgid(65534).gr_name  # nobody's own group
    own = Paths(*(tmp_path / "own" / d for d in ("etc", "state", "run", "log")))
    system = Paths(*(tmp_path / "system" / d for d in ("etc", "state", "run", "log")))
    monkeypatch.setattr(
        context_module, "resolve_paths", lambda mode=None, environ=None: system if mode else own
    )
    for folder in [tmp_path, *tmp_path.parents]:
        folder.chmod(folder.stat().st_mode | 0o005)
    server = ControlServer(system.control_socket, Backend(), timing=Timing())
    server.start()
    system.runtime_dir.chmod(0o755)
    try:

        def state_seen_by_the_cli() -> str:
            daemon = context_module.Context().daemon()
            return "no daemon" if daemon is None else str(daemon.status().state)

        assert as_nobody(state_seen_by_the_cli) == "no daemon"  # private socket: 0600
        server.set_group(group)
        assert system.control_socket.stat().st_mode & 0o777 == 0o660
        assert as_nobody(state_seen_by_the_cli) == "running"
        server.set_group(None)
        assert system.control_socket.stat().st_mode & 0o777 == 0o600
    finally:
        server.close()


def test_backup_goes_through_and_its_failure_comes_back_as_a_backup_error(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    _server, client, _backend = server
    assert client.backup()["target"] == "/default"
    assert client.backup("/mnt/usb")["target"] == "/mnt/usb"
    with pytest.raises(BackupError, match="does not exist"):
        client.backup("/unplugged")
    with pytest.raises(UsageError, match="must be a string"):
        client.request("POST", "/backup", {"target": 5})


def test_the_cli_operations_of_issue_23(
    server: tuple[ControlServer, ControlClient, Backend],
) -> None:
    """`hubd logs --daemon`, `hubd config set` and `hubd up` through the socket."""
    _server, client, _backend = server
    assert client.daemon_logs(3) == ["hubd line 0", "hubd line 1", "hubd line 2"]
    assert client.reload_config("/etc/hubd.toml") == {
        "config_file": "/etc/hubd.toml",
        "notes": [],
    }
    assert client.progress(since=7) == {"next": 8, "entries": [{"step": "entry 7"}]}
    assert "400" in raw_request(_server.path, b"GET /v1/progress?since=x HTTP/1.1\r\n\r\n")
