"""The tray on a hub of several machines: the Machines submenu and the notices when one goes
away and comes back, polled from a fake daemon behind a real control socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubd._tray.menu import ItemSpec, build_menu
from hubd._tray.notices import Notice, NoticeTracker
from hubd._tray.state import Snapshot, fetch_snapshot
from hubd.control import ControlClient
from hubd.timing import Timing
from tests.tray_fakes import FakeDaemon, serving, short_temp_dir, two_machines


@pytest.fixture
def daemon() -> Iterator[tuple[FakeDaemon, ControlClient]]:
    fake = FakeDaemon()
    with short_temp_dir("hubd-machines-") as folder, serving(fake, folder / "control.sock"):
        yield fake, ControlClient(folder / "control.sock", timeout=5)


def machines(snapshot: Snapshot) -> ItemSpec | None:
    return next((i for i in build_menu(snapshot) if i.label.startswith("Machines")), None)


def test_one_machine_has_no_machines_menu(daemon: tuple[FakeDaemon, ControlClient]) -> None:
    _, client = daemon
    snapshot = fetch_snapshot(client)
    assert snapshot.nodes == () and machines(snapshot) is None
    assert NoticeTracker(timing=Timing()).update(snapshot) == []


def test_each_machine_with_its_state_and_who_lives_there(
    daemon: tuple[FakeDaemon, ControlClient],
) -> None:
    fake, client = daemon
    fake.nodes = two_machines()
    item = machines(fetch_snapshot(client))
    assert item is not None and item.label == "Machines (2)"
    assert [(row.label, row.checked, row.enabled) for row in item.children] == [
        ("hubhost (this machine) — ready", True, False),
        ("gpubox — ready — home of bob", True, False),
    ]
    fake.set_node_state("gpubox", "down")
    fake.nodes[0]["availability"] = "drain"
    item = machines(fetch_snapshot(client))
    assert item is not None and item.label == "Machines (2, 1 down)"
    assert [(row.label, row.checked) for row in item.children] == [
        ("hubhost (this machine) — paused for maintenance", True),
        ("gpubox — down — home of bob", False),
    ]


def test_a_machine_going_away_and_coming_back_is_told_once_each(
    daemon: tuple[FakeDaemon, ControlClient],
) -> None:
    fake, client = daemon
    fake.nodes = two_machines()
    tracker = NoticeTracker(timing=Timing())
    assert tracker.update(fetch_snapshot(client)) == []
    fake.set_node_state("gpubox", "down")
    assert tracker.update(fetch_snapshot(client)) == [
        Notice(
            "node-down",
            "gpubox is unreachable",
            "bob cannot use their server until it is back; everyone else carries on.",
        )
    ]
    assert tracker.update(fetch_snapshot(client)) == []
    # A poll without nodes (the stack could not be described) neither repeats nor ends it.
    saved, fake.nodes = fake.nodes, []
    assert tracker.update(fetch_snapshot(client)) == []
    fake.nodes = saved
    assert tracker.update(fetch_snapshot(client)) == []
    fake.set_node_state("gpubox", "ready")
    assert tracker.update(fetch_snapshot(client)) == [
        Notice(
            "node-back",
            "gpubox is back",
            "The machine is reachable again. bob can start their servers again.",
        )
    ]
    assert tracker.update(fetch_snapshot(client)) == []


def test_a_machine_already_down_when_the_tray_starts_is_told() -> None:
    fake = FakeDaemon()
    fake.nodes = two_machines()
    fake.set_node_state("gpubox", "down")
    fake.nodes[1]["homes"] = ["bob", "cy", "di"]
    notices = NoticeTracker(timing=Timing()).update(Snapshot(status=fake.status()))
    assert [n.message for n in notices] == [
        "bob, cy and di cannot use their server until it is back; everyone else carries on."
    ]
