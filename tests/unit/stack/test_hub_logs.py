"""`hubd logs` while hubd replaces the hub container: the engine refuses the old container's
log (409, "dead or marked for removal"); the new one's is given, or one clear line."""

from __future__ import annotations

from typing import cast

import docker
import pytest
from docker.errors import APIError, NotFound

from hubd.config import Config
from hubd.errors import StackError
from hubd.stack.front import Front
from hubd.stack.hub import Hub
from hubd.stack.naming import LABEL_STACK, StackNames
from hubd.stack.progress import LogReporter
from hubd.stack.proxy import Proxy
from hubd.timing import Timing

TIMING = Timing(hub_log_replaced_wait_s=0.3, container_gone_poll_s=0.01)
NAMES = StackNames("hubd")


class FakeContainer:
    def __init__(self, log: bytes | None) -> None:
        self.log = log
        self.name = NAMES.hub_container
        self.attrs = {"Config": {"Labels": {LABEL_STACK: NAMES.stack}}}

    def logs(self, tail: int) -> bytes:
        if self.log is None:
            raise APIError("409 Conflict", explanation="container is marked for removal")
        return self.log


class FakeContainers:
    """What `containers.get` finds, one answer per call (the last one repeated)."""

    def __init__(self, *found: FakeContainer | None) -> None:
        self.found = list(found)

    def get(self, name: str) -> FakeContainer:
        container = self.found.pop(0) if len(self.found) > 1 else self.found[0]
        if container is None:
            raise NotFound("no such container")
        return container


def hub_with(*found: FakeContainer | None) -> Hub:
    client = cast(docker.DockerClient, type("Client", (), {"containers": FakeContainers(*found)}))
    config, reporter = Config(), LogReporter(TIMING)
    proxy = Proxy(client, config, NAMES, reporter, TIMING)
    front = Front(client, config, NAMES, reporter, TIMING)
    return Hub(client, config, NAMES, reporter, TIMING, proxy, front)


@pytest.fixture(autouse=True)
def conflict_is_409(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-py reads the status from the HTTP response, which these errors have none of.
    monkeypatch.setattr(APIError, "status_code", property(lambda self: 409))


def test_the_new_container_s_log_is_given() -> None:
    hub = hub_with(FakeContainer(None), FakeContainer(None), FakeContainer(b"new hub\n"))
    assert hub.log_tail(50) == "new hub\n"


def test_no_hub_container_is_an_empty_log() -> None:
    assert hub_with(FakeContainer(None), None).log_tail(50) == ""


def test_a_replacement_that_does_not_come_is_one_line() -> None:
    with pytest.raises(StackError, match="being replaced"):
        hub_with(FakeContainer(None)).log_tail(50)
