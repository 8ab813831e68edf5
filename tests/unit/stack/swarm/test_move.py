"""The pure parts of `hubd user move`: refusals, the steps it shows, the manifests' verdict."""

from __future__ import annotations

import time

import pytest

from hubd.backup.engine import BackupResult
from hubd.stack.naming import StackNames
from hubd.stack.swarm import move_payload
from hubd.stack.swarm.homes import home_label, homes_elsewhere
from hubd.stack.swarm.move import (
    NodeFacts,
    compare_manifests,
    plan_steps,
    refusal,
)
from hubd.stack.swarm.move_helper import MoveHelpers, Outcome, escaped_username
from hubd.timing import Timing
from tests.swarm_fakes import FakeNode, FakeSwarmClient

MANAGER = NodeFacts("m1", "node1", ready=True, active=True, manager=True)
WORKER = NodeFacts("w2", "node2", ready=True, active=True, manager=False)


def test_a_move_that_can_go_ahead() -> None:
    assert refusal("ann", MANAGER, WORKER, server_running=False, stop_server=False) is None
    assert refusal("ann", WORKER, MANAGER, server_running=True, stop_server=True) is None


@pytest.mark.parametrize(
    "source, target, running, stop, expected",
    [
        (WORKER, WORKER, False, False, "ann already lives on node2; nothing to move"),
        (MANAGER, NodeFacts("w2", "node2", False, True, False), False, False, "node2 is down"),
        (MANAGER, NodeFacts("w2", "node2", True, False, False), False, False, "node2 is drained"),
        (NodeFacts("w2", "node2", False, True, False), MANAGER, False, False, "which is down"),
        (MANAGER, WORKER, True, False, "ann's server is running: stop it first"),
    ],
)
def test_refusals_are_one_line_that_says_what_to_do(
    source: NodeFacts, target: NodeFacts, running: bool, stop: bool, expected: str
) -> None:
    message = refusal("ann", source, target, running, stop)
    assert message is not None and expected in message and "\n" not in message


def test_steps_in_order_and_what_happens_to_the_old_copy() -> None:
    there = plan_steps("ann", "hub-home-ann", MANAGER, WORKER, server_running=True)
    assert there[0] == "stop ann's server"
    assert there[1] == "copy volume hub-home-ann from node1 to node2"
    assert there[-2].startswith("make node2 ann's home")
    assert there[-1] == "remove the old volume on node1"
    back = plan_steps("ann", "hub-home-ann", WORKER, MANAGER, server_running=False)
    assert back[0].startswith("copy") and back[-1] == "empty the old volume on node2"


ENTRY = [".", "dir", 0o755, 1000, 100, 0, ""]
FILE = ["a b", "file", 0o644, 1000, 100, 3, "ab" * 32]


def test_identical_manifests_pass() -> None:
    assert compare_manifests([ENTRY, FILE], [list(ENTRY), list(FILE)]) is None


@pytest.mark.parametrize(
    "received, expected",
    [
        ([ENTRY], "'a b' is missing on the target"),
        ([ENTRY, FILE, ["x", "file", 0o644, 0, 0, 0, ""]], "'x' appeared on the target"),
        ([ENTRY, [*FILE[:3], 0, 0, *FILE[5:]]], "'a b' differs on the target (owner, group)"),
        ([ENTRY, [*FILE[:6], "cd" * 32]], "'a b' differs on the target (content)"),
        ([[".", "dir", 0o700, 1000, 100, 0, ""], FILE], "'.' differs on the target (mode)"),
    ],
)
def test_the_first_difference_is_named(received: list[list[object]], expected: str) -> None:
    assert compare_manifests([ENTRY, FILE], received) == expected


@pytest.mark.parametrize(
    "name, escaped", [("ann", "ann"), ("a.b", "a-2eb"), ("a_b-c", "a-5fb-2dc"), ("x9", "x9")]
)
def test_volume_names_as_dockerspawner_escapes_them(name: str, escaped: str) -> None:
    assert escaped_username(name) == escaped


def test_a_helpers_output_read_back() -> None:
    manifest = [ENTRY, FILE]
    encoded = move_payload.encode(manifest)
    half = len(encoded) // 2
    lines = [
        "MANIFEST " + encoded[:half],
        "MANIFEST " + encoded[half:],
        "SUMMARY " + '{"entries": 2, "files": 1, "bytes": 3, "sha256": "x"}',
    ]
    outcome = Outcome("node2", "complete", 0, lines)
    assert outcome.ok and outcome.manifest() == manifest
    assert outcome.summary() == {"entries": 2, "files": 1, "bytes": 3, "sha256": "x"}
    failed = Outcome("node2", "failed", 3, ["ERROR /x already holds files"])
    assert not failed.ok and failed.problem() == "/x already holds files"
    assert Outcome("node2", "rejected", None, [], "No such image: u").problem() == (
        "No such image: u"
    )
    assert Outcome("node2", "failed", 1, ["Traceback", "OSError: boom"]).problem() == (
        "OSError: boom"
    )


def test_a_backup_names_people_whose_files_are_on_other_nodes() -> None:
    names = StackNames("hub")
    client = FakeSwarmClient(
        [
            FakeNode("m1", "node1", {home_label(names, "cy"): "true"}),
            FakeNode("w2", "node2", {home_label(names, "ann"): "true", "other": "x"}),
        ],
        local="m1",
    )
    away = homes_elsewhere(client, names)
    assert away == {"ann": "node2"}
    result = BackupResult("s", "/t", ["cy"], 1.0, elsewhere=away)
    assert result.warning() == (
        "not in this backup: ann (on node2) — move them home or back up that node"
    )
    assert result.to_json()["warning"] == result.warning()
    assert BackupResult("s", "/t", ["cy"], 1.0).warning() is None


class _Service:
    """A helper service whose one task goes through the given states, one per look."""

    def __init__(self, *states: str, exit_code: int | None = None) -> None:
        self.states = list(states)
        self.exit_code = exit_code

    def tasks(self) -> list[dict[str, object]]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return [{"Status": {"State": state, "ContainerStatus": {"ExitCode": self.exit_code}}}]

    def logs(self, **_: object) -> list[bytes]:
        return [b"ERROR the target already holds files\n"]


def _helpers() -> MoveHelpers:
    timing = Timing(move_helper_poll_s=0.0, move_helper_start_deadline_s=60.0)
    return MoveHelpers(None, StackNames("hubd"), "img", "ann", timing)


def test_the_sender_waits_for_a_running_receiver_or_hears_how_it_ended() -> None:
    far = time.monotonic() + 60
    assert _helpers().wait_running(_Service("new", "preparing", "running"), "node2", far) is None
    ended = _helpers().wait_running(_Service("preparing", "failed", exit_code=3), "node2", far)
    assert ended is not None and ended.exit_code == 3
    assert ended.problem() == "the target already holds files"
    stalled = _helpers().wait_running(_Service("pending"), "node2", time.monotonic() - 1)
    assert stalled is not None and stalled.state == "timeout"
