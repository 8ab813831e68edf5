"""`hubd node …` and `hubd user add --node` as a person types them, through a daemon (a fake
one behind a real control socket). On one machine against the real engine:
tests/integration/test_node_cmd.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.cli.node_cmd import memory_words, node_line
from hubd.status import NodeView
from tests.hubd_process import hubd
from tests.tray_fakes import FakeDaemon, serving, short_temp_dir, two_machines


@pytest.fixture
def daemon() -> Iterator[tuple[FakeDaemon, Path]]:
    fake = FakeDaemon()
    with short_temp_dir("hubd-node-") as folder, serving(fake, folder / "control.sock"):
        yield fake, folder


def test_node_add_prints_the_join_command_alone_on_stdout(
    daemon: tuple[FakeDaemon, Path],
) -> None:
    fake, runtime = daemon
    result = hubd("node", "add", "--advertise-addr", "198.51.100.7", runtime=runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "docker swarm join --token SWMTKN-1-fake 198.51.100.7:2377\n"
    assert "now the Swarm manager (at 198.51.100.7)" in result.stderr
    again = hubd("node", "add", runtime=runtime)
    assert "this machine is the Swarm manager (at 192.0.2.5)" in again.stderr
    assert fake.calls == ["add_node 198.51.100.7", "add_node None"]


def test_node_list_as_a_table_and_as_json(daemon: tuple[FakeDaemon, Path]) -> None:
    fake, runtime = daemon
    fake.nodes = two_machines()
    fake.nodes[1].update(cpus=8, memory_bytes=32 * 2**30, address="192.0.2.9")
    fake.set_node_state("gpubox", "down")
    result = hubd("node", "list", runtime=runtime)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NODE", "ID", "ROLE", "STATE", "ADDRESS", "CPUS", "MEMORY", "HAS", "HOME", "OF", "RUNS"
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["hubhost", "*", "mmmmmmmmmmmm", "manager"]
    assert lines[1].endswith("alice")
    gpubox = lines[2]
    for cell in ("wwwwwwwwwwww", "worker", "down", "192.0.2.9", "32.0 GiB", "2 NVIDIA-GPU"):
        assert cell in gpubox
    assert "label gpu" in gpubox and gpubox.split()[-2:] == ["bob", "-"]
    as_json = json.loads(hubd("node", "list", "--json", runtime=runtime).stdout)
    assert [(n["hostname"], n["state"]) for n in as_json] == [
        ("hubhost", "ready"),
        ("gpubox", "down"),
    ]
    assert as_json[1]["resources"] == [{"kind": "NVIDIA-GPU", "count": 2}]
    status = hubd("status", runtime=runtime).stdout
    assert "machines: hubhost (this machine, manager, ready): running alice\n" in status
    assert "          gpubox (worker, down): home of bob\n" in status


def test_label_remove_and_their_refusals(daemon: tuple[FakeDaemon, Path]) -> None:
    fake, runtime = daemon
    fake.nodes = two_machines()
    assert hubd("node", "label", "gpubox", "big", runtime=runtime).stdout == (
        "gpubox has label big\n"
    )
    assert hubd("node", "label", "gpubox", "big", runtime=runtime).stdout == (
        "gpubox has label big (already so)\n"
    )
    result = hubd("node", "label", "gpubox", "big", "--remove", runtime=runtime)
    assert result.stdout == "gpubox no longer has label big\n"
    refused = hubd("node", "remove", "gpubox", runtime=runtime)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr == "hubd: bob has their files on gpubox\n"
    fake.nodes[1]["homes"] = []
    removed = hubd("node", "remove", "gpubox", runtime=runtime)
    assert removed.stdout == (
        "removed gpubox from the hub's machines\n"
        "on gpubox, run `docker swarm leave` so that its engine forgets this Swarm "
        "(`hubd node add` prints how it joins again)\n"
    )
    assert [n["hostname"] for n in fake.nodes] == ["hubhost"]


def test_user_add_with_a_node(daemon: tuple[FakeDaemon, Path]) -> None:
    fake, runtime = daemon
    result = hubd(
        "user", "add", "cy", "--node", "gpubox", "--password-stdin",
        runtime=runtime, stdin="pw-pw-pw-pw\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake.calls == ["add_user cy node=gpubox"]


def test_a_node_in_a_line_and_memory_in_words() -> None:
    drained = NodeView(
        hostname="spare", role="worker", state="ready", availability="drain", homes=("a", "b")
    )
    assert node_line(drained) == "spare (worker, ready, drained): home of a, b"
    assert memory_words(0) == "-" and memory_words(512 * 2**20) == "512 MiB"
