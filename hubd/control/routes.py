"""The control API's whole surface in one table.

Each `Route` names one operation: its HTTP method and path, the fields of its request (where
each travels and what type it must be), the shape of its answer, and how long a client waits
for it. The operation's name is also the name of the backend's handler (`ControlBackend`,
which `DaemonBackend` implements) and of the client's method (`ControlClient`): the server's
router is built from this table once, the client encodes its requests and decodes the answers
from it, and a unit test holds the backend protocol and the client to it (names and
parameters). JupyterHub's `apihandlers` keep their `default_handlers` list the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hubd.status import Status, Supervision


class Where(enum.Enum):
    PATH = "path"  # one segment of the path, `{name}` in the pattern
    BODY = "body"  # a key of the JSON body
    BODY_OR_QUERY = "body or query"  # the body's key, else `?key=1` in the query
    QUERY = "query"  # `?key=value`


class Kind(enum.Enum):
    TEXT = "a string"
    OPTIONAL_TEXT = "a string or null"
    FLAG = "true or false"
    OBJECT = "an object"
    TAIL = "a number of lines"  # an int, default 200, clamped to 1..10 000
    COUNT = "a count"  # an int, default 0, at least 0


@dataclass(frozen=True)
class Field:
    name: str  # the handler's keyword parameter and the request's key
    kind: Kind
    where: Where = Where.BODY


class Answer(enum.Enum):
    STATUS = "status"  # a `Status`, as its JSON
    SUPERVISION = "supervision"  # a `Supervision`, as its JSON
    OBJECT = "object"  # a JSON object, as the handler returns it
    LIST = "list"  # a list, sent as {Route.list_key: [...]}
    # Text as it comes (a log followed), until the handler's Stream ends or the client goes:
    # one JSON object a line (protocol.py says which), the last one saying how it ended.
    STREAM = "stream"


class Stream(Protocol):
    """What a handler of an Answer.STREAM route returns: text chunks as they come (blocking
    between them), and `close()`, callable from another thread, that ends the iteration."""

    def __iter__(self) -> Iterator[str]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Streamed:
    """A handler's Stream on its way to the server, which sends it as it comes."""

    stream: Stream


@dataclass(frozen=True)
class Route:
    name: str  # the operation: handler and client method
    method: str
    path: str  # below /v1, e.g. "/users/{name}/password"
    fields: tuple[Field, ...] = ()
    answer: Answer = Answer.OBJECT
    list_key: str = ""  # with Answer.LIST
    # The client's wait: None keeps its own timeout; else this `Timing` attribute, instead of
    # the client's timeout or (`added`) on top of it.
    timeout: str | None = None
    added: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.path.split("/") if part)


def _path(name: str) -> Field:
    return Field(name, Kind.TEXT, Where.PATH)


ROUTES: tuple[Route, ...] = (
    Route("status", "GET", "/status", answer=Answer.STATUS),
    Route("start", "POST", "/start", answer=Answer.SUPERVISION),
    Route("stop", "POST", "/stop", answer=Answer.SUPERVISION),
    Route("restart", "POST", "/restart", answer=Answer.SUPERVISION),
    Route(
        "logs",
        "GET",
        "/logs",
        (Field("tail", Kind.TAIL, Where.QUERY),),
        Answer.LIST,
        "lines",
    ),
    # `hubd logs -f` through the daemon: the hub's log from `tail` lines back, as it comes;
    # it ends when the hub container stops.
    Route(
        "follow_logs",
        "GET",
        "/logs/follow",
        (Field("tail", Kind.TAIL, Where.QUERY),),
        Answer.STREAM,
    ),
    # hubd's own log (its log file), for people who may use the socket but not read the file.
    Route(
        "daemon_logs",
        "GET",
        "/logs/daemon",
        (Field("tail", Kind.TAIL, Where.QUERY),),
        Answer.LIST,
        "lines",
    ),
    Route(
        "follow_daemon_logs",
        "GET",
        "/logs/daemon/follow",
        (Field("tail", Kind.TAIL, Where.QUERY),),
        Answer.STREAM,
    ),
    # `hubd config set`: read the config file again, as SIGHUP does, answered once applied
    # between two passes. `config_file` is the file the caller changed (refused if another).
    Route(
        "reload_config",
        "POST",
        "/config/reload",
        (Field("config_file", Kind.TEXT),),
        timeout="config_reload_wait_s",
        added=True,
    ),
    # `hubd up` through the daemon: its progress entries (steps, build lines, pulls) from
    # number `since` on, {"next": N, "entries": [...]}; asked again with since=next.
    Route("progress", "GET", "/progress", (Field("since", Kind.COUNT, Where.QUERY),)),
    # A first backup of big volumes takes a while; the daemon answers when it is done.
    Route(
        "backup",
        "POST",
        "/backup",
        (Field("target", Kind.OPTIONAL_TEXT),),
        timeout="backup_request_timeout_s",
    ),
    # People's accounts.
    Route("list_users", "GET", "/users", answer=Answer.LIST, list_key="users"),
    Route(
        "add_user",
        "POST",
        "/users",
        (
            Field("name", Kind.TEXT),
            Field("password", Kind.TEXT),
            Field("admin", Kind.FLAG),
            Field("node", Kind.OPTIONAL_TEXT),
        ),
    ),
    Route(
        "remove_user",
        "DELETE",
        "/users/{name}",
        (_path("name"), Field("delete_data", Kind.FLAG, Where.BODY_OR_QUERY)),
    ),
    Route(
        "set_password",
        "POST",
        "/users/{name}/password",
        (_path("name"), Field("password", Kind.TEXT)),
    ),
    Route("unlock_user", "POST", "/users/{name}/unlock", (_path("name"),)),
    # Copying someone's files between machines takes a while; answered when done.
    Route(
        "move_user",
        "POST",
        "/users/{name}/move",
        (
            _path("name"),
            Field("to", Kind.TEXT),
            Field("stop_server", Kind.FLAG),
            Field("dry_run", Kind.FLAG),
        ),
        timeout="move_request_timeout_s",
    ),
    # Upgrades: pulling and building images can take many minutes, so the CLI makes its
    # client with Timing.upgrade_request_timeout_s.
    Route(
        "upgrade_plan",
        "POST",
        "/upgrade/plan",
        (Field("pull", Kind.FLAG, Where.BODY_OR_QUERY),),
    ),
    Route("upgrade_apply", "POST", "/upgrade/apply", (Field("plan", Kind.OBJECT),)),
    # The machines of the hub's Swarm (`hubd node`).
    Route("list_nodes", "GET", "/nodes", answer=Answer.LIST, list_key="nodes"),
    Route("add_node", "POST", "/nodes", (Field("advertise_addr", Kind.OPTIONAL_TEXT),)),
    # Draining waits for the node's tasks to leave, up to its own deadline.
    Route(
        "remove_node",
        "DELETE",
        "/nodes/{node}",
        (_path("node"),),
        timeout="node_drain_deadline_s",
        added=True,
    ),
    Route(
        "label_node",
        "POST",
        "/nodes/{node}/labels",
        (_path("node"), Field("label", Kind.TEXT), Field("remove", Kind.FLAG)),
    ),
)

BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}


def encode_answer(route: Route, result: Any) -> Any:
    """The handler's result as the JSON the server sends."""
    if route.answer in (Answer.STATUS, Answer.SUPERVISION):
        return result.to_json()
    if route.answer is Answer.LIST:
        return {route.list_key: result}
    if route.answer is Answer.STREAM:
        return Streamed(result)
    return result


def decode_answer(route: Route, data: Any) -> Any:
    """The server's JSON as the handler's result, on the client's side."""
    if route.answer is Answer.STATUS:
        return Status.from_json(data)
    if route.answer is Answer.SUPERVISION:
        return Supervision.from_json(data)
    if route.answer is Answer.LIST:
        return list(data[route.list_key])
    return dict(data)
