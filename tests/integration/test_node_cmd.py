"""`hubd node …` on one machine, without a daemon: straight on the real engine, which is no
Swarm manager (the fake daemon's side: tests/unit/cli/test_node_cmd.py)."""

from __future__ import annotations

from pathlib import Path

import docker

from tests.hubd_process import hubd


def test_one_machine_without_a_daemon_says_so(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    assert not docker_client.info().get("Swarm", {}).get("ControlAvailable")
    result = hubd("node", "list", runtime=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("one machine: this one runs the hub and everyone's")
    assert hubd("node", "list", "--json", runtime=tmp_path).stdout == "[]\n"
    refused = hubd("node", "remove", "gpubox", runtime=tmp_path)
    assert refused.stderr == (
        "hubd: this hub runs on one machine: there are no nodes yet (`hubd node add` adds one)\n"
    )
