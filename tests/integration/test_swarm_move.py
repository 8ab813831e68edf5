"""`hubd user move` on the real 2-node Swarm lab (swarm_lab.py): node1 is the manager running the
stack, node2 a worker. A person's files go there and back byte for byte (manifests computed in
containers on each node's own engine), the home label follows, the old copy goes; refusals and
failures leave everything as it was."""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound
from docker.types import EndpointSpec

from hubd.stack.naming import LABEL_USER, ROLE_USER_DATA, ROLE_USER_SERVER
from hubd.stack.swarm import move_payload
from hubd.stack.swarm.homes import clear_home, homes
from hubd.stack.swarm.move_helper import ROLE_MOVE_HELPER, escaped_username
from tests.images.build import TestImages
from tests.integration.daemon_proc import DaemonProc
from tests.integration.docker_env import StackEnv
from tests.integration.swarm_lab import LabNode, SwarmLab
from tests.patience import patient

pytestmark = pytest.mark.integration

PASSWORD = "move-me-please-1"
USER = "ann.b"  # a dot: the volume's name is DockerSpawner's escaped one
# ~20 MB of a person's files, with what a copy tends to lose: odd names, a symlink (and a
# dangling one), empty folders, hidden files, exec bits, a private folder, root-owned files.
FILL = r"""
set -e
cd /home/jovyan
mkdir -p work/empty .config/deep/er 'with space' private
head -c 12000000 /dev/urandom > work/data.bin
head -c 8000000 /dev/zero > work/zeros.bin
i=0; while [ $i -lt 200 ]; do echo "line $i" > "work/small-$i.txt"; i=$((i+1)); done
echo secret > .hidden
echo '{}' > .config/deep/er/settings.json
printf 'x' > "with space/odd 'quote' \"dq\" ü ✓ tab	end"
printf '#!/bin/sh\necho hi\n' > work/run.sh && chmod 755 work/run.sh
ln -s work/data.bin link-to-data
ln -s /nowhere dangling
echo mine > private/notes && chmod 700 private && chmod 600 private/notes
chown -R 1000:100 .
echo root-owned > work/by-root && chown 0:0 work/by-root
chmod 2775 'with space'
"""


def payload_cmd(*args: str) -> list[str]:
    return ["python3", "-c", Path(move_payload.__file__).read_text(), *args]


def manifest_on(node: LabNode, volume: str, image: str) -> list[list[object]] | None:
    """The volume's manifest, computed in a container on that node's own engine; None if the
    node has no such volume."""
    client = node.client()
    try:
        client.volumes.get(volume)
    except NotFound:
        return None
    out = client.containers.run(
        image,
        payload_cmd("manifest", "/v"),
        entrypoint=[],
        user="0",
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        network_mode="none",
        remove=True,
    )
    chunks = [
        line[len("MANIFEST ") :]
        for line in bytes(out).decode().splitlines()
        if line.startswith("MANIFEST ")
    ]
    return move_payload.decode("".join(chunks))


@pytest.fixture(scope="module")
def moving(
    swarm_lab: SwarmLab, test_images: TestImages, tmp_path_factory: Any
) -> Iterator[StackEnv]:
    env = swarm_lab.hubd_env(tmp_path_factory.mktemp("move"), backup_image=test_images.restic)
    try:
        env.hubd("up", timeout=900)
        env.hubd("user", "add", "--password-stdin", "--", USER, input=PASSWORD + "\n")
        yield env
    finally:
        env.hubd("purge", "--yes", check=False)
        swarm_lab.reset()


@pytest.fixture
def home(moving: StackEnv, swarm_lab: SwarmLab) -> Iterator[str]:
    """USER's volume on node1 (the manager), as the spawner makes it, filled with FILL."""
    client = swarm_lab.node1.client()
    names = moving.names
    volume = names.user_volume(escaped_username(USER))
    client.volumes.create(volume, labels=names.labels(ROLE_USER_DATA, **{LABEL_USER: USER}))
    # Mounted on the image's home, as a server's first start would: the image's files and
    # jovyan's ownership are copied in first.
    client.containers.run(
        moving.config.user_image,
        ["sh", "-c", FILL],
        entrypoint=[],
        user="0",
        volumes={volume: {"bind": "/home/jovyan", "mode": "rw"}},
        network_mode="none",
        remove=True,
    )
    yield volume
    manager = swarm_lab.manager_client()
    # Only what a move (or this test) makes: the stack's hub and proxy stay up for the next.
    for role in (ROLE_MOVE_HELPER, ROLE_USER_SERVER):
        for service in manager.services.list(filters=names.filters(role)):
            service.remove()
    for node in swarm_lab.nodes:
        deadline = time.monotonic() + patient(60)  # until helpers' containers are gone
        while True:
            try:
                node.client().volumes.get(volume).remove(force=True)
                break
            except NotFound:
                break
            except docker.errors.APIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    clear_home(manager, names, USER)


def move(
    env: StackEnv, to: str, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return env.hubd("user", "move", USER, "--to", to, *extra, timeout=600, check=check)


def test_there_and_back_byte_for_byte(moving: StackEnv, home: str, swarm_lab: SwarmLab) -> None:
    node1, node2 = swarm_lab.node1, swarm_lab.node2
    manager = swarm_lab.manager_client()
    before = manifest_on(node1, home, moving.config.user_image)
    assert before is not None and len(before) > 200
    total = sum(int(str(e[5])) for e in before)
    assert total > 20_000_000

    started = time.monotonic()
    out = move(moving, node2.name).stdout
    there_s = time.monotonic() - started
    assert f"moving {USER} from {node1.name} to {node2.name}" in out
    assert "compared them: identical" in out and f"removed the old volume {home}" in out
    assert manifest_on(node2, home, moving.config.user_image) == before
    assert homes(manager, moving.names) == {USER: node2.node_id}
    assert manifest_on(node1, home, moving.config.user_image) is None  # the old volume is gone
    volume = node2.client().volumes.get(home)
    assert volume.attrs["Labels"] == moving.names.labels(ROLE_USER_DATA, **{LABEL_USER: USER})

    started = time.monotonic()
    out = move(moving, node1.node_id[:8]).stdout  # an id prefix names a node too
    back_s = time.monotonic() - started
    assert "compared them: identical" in out and "emptied the old volume" in out
    assert manifest_on(node1, home, moving.config.user_image) == before
    assert homes(manager, moving.names) == {}  # people without a label live on the manager
    emptied = manifest_on(node2, home, moving.config.user_image)
    assert emptied is not None and [e[0] for e in emptied] == ["."]
    assert not manager.services.list(filters=moving.names.filters(ROLE_MOVE_HELPER))
    assert not [n for n in manager.networks.list() if "-move-" in str(n.name)]

    baseline_s = _archive_copy_seconds(swarm_lab, home, moving.config.user_image)
    print(
        f"\nmove of {total / 1e6:.1f} MB: manager->node2 {there_s:.1f} s, node2->manager "
        f"{back_s:.1f} s; get_archive/put_archive baseline {baseline_s:.1f} s "
        f"(ratio {there_s / baseline_s:.1f}x)"
    )


def _archive_copy_seconds(lab: SwarmLab, volume: str, image: str) -> float:
    """A plain `docker cp`-style copy of the same volume between the two engines (through the
    test process), as a yardstick; the copy is thrown away."""
    source, target = lab.node1.client(), lab.node2.client()
    started = time.monotonic()
    reader = source.containers.create(
        image, ["true"], entrypoint=[], volumes={volume: {"bind": "/v", "mode": "ro"}}
    )
    writer = target.containers.create(
        image, ["true"], entrypoint=[], volumes={"hubd-move-baseline": {"bind": "/w", "mode": "rw"}}
    )
    try:
        stream, _ = reader.get_archive("/v/.")
        writer.put_archive("/w", io.BytesIO(b"".join(stream)))
        return time.monotonic() - started
    finally:
        reader.remove(force=True)
        writer.remove(force=True)
        target.volumes.get("hubd-move-baseline").remove(force=True)


def _one_line_refusal(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    # Progress lines (logged) may come first; the error is one line of its own.
    lines = [line for line in result.stderr.splitlines() if line.startswith("hubd: ")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_refusals_leave_everything_as_it_was(
    moving: StackEnv, home: str, swarm_lab: SwarmLab, test_images: TestImages
) -> None:
    node1, node2 = swarm_lab.node1, swarm_lab.node2
    manager = swarm_lab.manager_client()
    before = manifest_on(node1, home, moving.config.user_image)

    _one_line_refusal(move(moving, "node9", check=False), "hubd: no node 'node9'; the nodes are:")
    _one_line_refusal(move(moving, node1.name, check=False), f"already lives on {node1.name}")
    result = moving.hubd("user", "move", "nobody", "--to", "node2", check=False)
    _one_line_refusal(result, "there is no user 'nobody'")

    # A server running (as the spawner's service looks to hubd): refused without --yes.
    server = manager.services.create(
        test_images.user,
        ["sleep", "300"],
        name=f"{moving.names.stack}-srv-move-test",
        labels=moving.names.labels(ROLE_USER_SERVER, **{LABEL_USER: USER}),
        constraints=[f"node.id=={node1.node_id}"],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
    )
    try:
        _one_line_refusal(move(moving, node2.name, check=False), "server is running")
    finally:
        server.remove()

    node2.stop_engine()
    try:
        node2.wait_status("down")
        _one_line_refusal(move(moving, node2.name, check=False), f"node {node2.name} is down")
    finally:
        node2.start_engine()
        node2.wait_status("ready")

    assert manifest_on(node1, home, moving.config.user_image) == before
    assert homes(manager, moving.names) == {}
    assert manifest_on(node2, home, moving.config.user_image) is None


def test_a_failed_copy_keeps_the_old_volume_and_the_targets_files(
    moving: StackEnv, home: str, swarm_lab: SwarmLab
) -> None:
    """node2 already has a volume of that name with files: nothing moves, nothing is lost."""
    node1, node2 = swarm_lab.node1, swarm_lab.node2
    before = manifest_on(node1, home, moving.config.user_image)
    client = node2.client()
    client.volumes.create(home)
    client.containers.run(
        moving.config.user_image,
        ["sh", "-c", "echo theirs > /v/kept"],
        entrypoint=[],
        user="0",
        volumes={home: {"bind": "/v", "mode": "rw"}},
        remove=True,
    )
    kept = manifest_on(node2, home, moving.config.user_image)
    result = move(moving, node2.name, check=False)
    _one_line_refusal(result, f"{node2.name} already has a volume")
    assert manifest_on(node1, home, moving.config.user_image) == before
    assert manifest_on(node2, home, moving.config.user_image) == kept
    manager = swarm_lab.manager_client()
    assert homes(manager, moving.names) == {}
    assert not manager.services.list(filters=moving.names.filters(ROLE_MOVE_HELPER))
    assert json.loads(moving.hubd("user", "list", "--json").stdout)[0]["name"] == USER


def test_through_the_daemon_and_a_backup_names_who_is_away(
    moving: StackEnv, home: str, swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    """With `hubd run` up, the CLI's move goes through its control API; a backup made while
    the person lives on node2 says so. (Last here: the daemon's stop takes the stack down.)"""
    node1, node2 = swarm_lab.node1, swarm_lab.node2
    before = manifest_on(node1, home, moving.config.user_image)
    daemon = DaemonProc(moving, tmp_path / "daemon.log").start()
    try:
        daemon.wait_state("running", timeout=300)
        out = move(moving, node2.name).stdout
        assert "the daemon is moving them" in out and "identical" in out
        assert manifest_on(node2, home, moving.config.user_image) == before
        target = tmp_path / "backups"
        target.mkdir()
        backup = json.loads(moving.hubd("backup", "--to", str(target), "--json").stdout)
        assert USER not in backup["users"]
        assert backup["warning"] == (
            f"not in this backup: {USER} (on {node2.name}) — move them home or back up that node"
        )
        move(moving, node1.name)
        assert manifest_on(node1, home, moving.config.user_image) == before
    finally:
        daemon.stop()
