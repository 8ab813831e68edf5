"""The container helpers the hub and the proxy share: what each does with a container's state."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest
from docker.errors import APIError

from hubd.errors import PortInUse, StackError
from hubd.stack.containers import TarEntry, bring_up, refuse_foreign, start_container, tar_of
from hubd.stack.naming import LABEL_STACK


class FakeContainer:
    """Only what the helpers touch: a status, labels, and the calls made."""

    def __init__(self, status: str = "running", labels: dict[str, str] | None = None) -> None:
        self.status = status
        self.name = "hubd-hub"
        self.attrs: dict[str, Any] = {"Config": {"Labels": labels or {}}}
        self.calls: list[str] = []
        self.start_error: APIError | None = None

    def start(self) -> None:
        self.calls.append("start")
        if self.start_error is not None:
            raise self.start_error

    def unpause(self) -> None:
        self.calls.append("unpause")


def recording_start(container: Any) -> None:
    container.calls.append("started by caller")


@pytest.mark.parametrize(
    ("status", "action", "expected", "calls"),
    [
        ("running", "unchanged", "unchanged", []),
        ("running", "created", "created", []),
        ("paused", "unchanged", "unpaused", ["unpause"]),
        ("paused", "recreated", "unpaused", ["unpause"]),
        ("exited", "unchanged", "started", ["started by caller"]),
        ("created", "created", "created", ["started by caller"]),
        ("created", "recreated", "recreated", ["started by caller"]),
    ],
)
def test_bring_up_unpauses_or_starts_and_says_what_was_done(
    status: str, action: str, expected: str, calls: list[str]
) -> None:
    container = FakeContainer(status)
    assert bring_up(container, recording_start, action) == expected
    assert container.calls == calls


@pytest.mark.parametrize("why", ["port is already allocated", "address already in use"])
def test_a_taken_port_is_one_clear_line_naming_it(why: str) -> None:
    container = FakeContainer("created")
    container.start_error = APIError("500 Server Error", explanation=f"driver failed: {why}")
    with pytest.raises(PortInUse, match=r"^port 8123 is already in use on this machine"):
        start_container(container, "proxy", 8123)


def test_another_start_failure_names_the_container_role() -> None:
    container = FakeContainer("created")
    container.start_error = APIError("500 Server Error", explanation="no such image")
    with pytest.raises(StackError, match=r"^the hub container did not start: no such image$"):
        start_container(container, "hub", 8000)
    assert container.calls == ["start"]


def test_objects_of_another_stack_or_of_nobody_are_refused() -> None:
    refuse_foreign("container", FakeContainer(labels={LABEL_STACK: "mine"}), "mine")
    for labels in ({LABEL_STACK: "theirs"}, {}):
        with pytest.raises(StackError, match=r"^a Docker container named 'hubd-hub' exists"):
            refuse_foreign("container", FakeContainer(labels=labels), "mine")


def test_volumes_carry_their_labels_at_the_top() -> None:
    volume = FakeContainer()
    volume.attrs = {"Labels": {LABEL_STACK: "mine"}}
    refuse_foreign("volume", volume, "mine")
    volume.attrs = {"Labels": {LABEL_STACK: "theirs"}}
    with pytest.raises(StackError, match=r"^a Docker volume named"):
        refuse_foreign("volume", volume, "mine")


def test_one_tar_carries_each_files_own_mode_and_owner_and_each_folder_once() -> None:
    data = tar_of(
        [
            TarEntry("/etc/hubd-proxy/token", "t", mode=0o400, owner=65534),
            TarEntry("/etc/hubd-proxy/routes-store.js", "js", mode=0o444),
            TarEntry("/var/lib/hubd-proxy", None, mode=0o700, owner=65534),
            TarEntry("/var/lib/hubd-proxy/routes.json", "{}", mode=0o600, owner=65534),
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert len(names) == len(set(names)), names
    found = {m.name: (m.isdir(), oct(m.mode), m.uid, m.gid) for m in members}
    assert found == {
        "etc": (True, "0o755", 0, 0),
        "etc/hubd-proxy": (True, "0o755", 0, 0),
        "var": (True, "0o755", 0, 0),
        "var/lib": (True, "0o755", 0, 0),
        "var/lib/hubd-proxy": (True, "0o700", 65534, 65534),
        "etc/hubd-proxy/token": (False, "0o400", 65534, 65534),
        "etc/hubd-proxy/routes-store.js": (False, "0o444", 0, 0),
        "var/lib/hubd-proxy/routes.json": (False, "0o600", 65534, 65534),
    }
    # A folder comes before what is in it, so the engine makes it before the files.
    assert names.index("var/lib/hubd-proxy") < names.index("var/lib/hubd-proxy/routes.json")
    assert names.index("etc/hubd-proxy") < names.index("etc/hubd-proxy/token")


def test_secrets_as_bytes_go_in_with_their_folders_closed() -> None:
    # The backup helper's: the repository password and keys, root's alone.
    data = tar_of([TarEntry("/run/hubd/password", b"pw\n", mode=0o600)], folder_mode=0o700)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        found = {m.name: (oct(m.mode), m.size) for m in archive.getmembers()}
    assert found == {
        "run": ("0o700", 0),
        "run/hubd": ("0o700", 0),
        "run/hubd/password": ("0o600", 3),
    }
