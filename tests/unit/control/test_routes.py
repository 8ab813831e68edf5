"""The control API's route table is the one description of its surface: the backend protocol,
the daemon's backend and the client all offer exactly its operations, with its fields."""

from __future__ import annotations

import inspect

import pytest

from hubd._daemon.backend import DaemonBackend
from hubd.control import ControlBackend, ControlClient
from hubd.control.routes import ROUTES, Where
from hubd.control.server import Router


def _parameters(owner: type, name: str) -> list[str]:
    signature = inspect.signature(getattr(owner, name))
    return [p for p in signature.parameters if p != "self"]


@pytest.mark.parametrize("owner", [ControlBackend, DaemonBackend, ControlClient])
def test_every_operation_has_a_handler_with_the_route_fields(owner: type) -> None:
    for route in ROUTES:
        assert _parameters(owner, route.name) == [f.name for f in route.fields], route.name


def test_the_protocol_offers_nothing_beyond_the_table() -> None:
    offered = {name for name in vars(ControlBackend) if not name.startswith("_")}
    assert offered == {route.name for route in ROUTES}


def test_operations_are_unique_and_path_fields_are_in_the_path() -> None:
    assert len({r.name for r in ROUTES}) == len(ROUTES)
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)
    for route in ROUTES:
        in_path = {s[1:-1] for s in route.segments if s.startswith("{")}
        assert in_path == {f.name for f in route.fields if f.where is Where.PATH}, route.name


def test_the_router_is_built_once_and_answers_unknown_paths_and_methods() -> None:
    from hubd.control.server import BadRequest

    router = Router(DaemonBackend.__new__(DaemonBackend))
    with pytest.raises(BadRequest, match="no such endpoint"):
        router.resolve("GET", "/v1/users/ann/nothing")
    with pytest.raises(BadRequest, match="PUT not allowed on /v1/users/ann"):
        router.resolve("PUT", "/v1/users/ann")
    assert callable(router.resolve("DELETE", "/v1/users/ann"))
