"""From the person's side: people's servers on a 2-node Swarm.

One hub under `hubd run` on node1 (the manager, where the hub and the proxy run), node2 a
worker with a (made-up) GPU. People log in through the proxy on node1: ada's home is node2,
bob's the manager; each has a kernel holding state, an open kernel websocket and a saved file.
Then, in order: ada's server stops and starts (same node, file intact); node2's engine stops
(the hub and bob carry on, ada reads why her server cannot start, her server comes back with
node2); ada moves to node1 (her files follow, byte for byte); a GPU image runs only where the
GPU is (and keeps running when that node changes), and a person whose files are elsewhere is
told so.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hubd.stack.naming import LABEL_USER, ROLE_USER_SERVER
from hubd.status import Status
from tests.integration.continuity import FILE_NAME, Person
from tests.integration.daemon_proc import DaemonProc, wait_for
from tests.integration.docker_env import StackEnv, derived_image
from tests.integration.hubclient import (
    read_bytes,
    read_file,
    server_running,
    spawn_with_image,
    stop_server,
    write_bytes,
)
from tests.integration.swarm_lab import SwarmLab

pytestmark = pytest.mark.integration

PASSWORD = "harbor-violet-anchor"
GPU_IMAGE = "hubd-test/gpu-notebook:1"
# Files that must follow a person between machines: a binary file, byte for byte.
DATA_NAME = "data.bin"
DATA = hashlib.sha256(b"seed").digest() * 32768 + bytes(range(256))  # ~1 MB


class SwarmPerson(Person):
    """A Person (continuity.py) who picks the image on the spawn form (`allowed_images`)."""

    def __init__(self, hub: Hub, name: str, image: str) -> None:
        self.image = image
        self.hub = hub
        super().__init__(hub.env.base_url, name, PASSWORD)

    def respawn(self) -> None:
        # A server already running or starting (hubd starts one that a node took with it)
        # is only opened.
        if not server_running(self.session, self.base_url, self.name):
            refused = spawn_with_image(self.session, self.base_url, self.name, self.image)
            assert not refused, f"{self.name}'s server was refused: {refused}"
        super().respawn()


class Hub:
    """The shared hub on the lab, its supervisor, and helpers to look at where servers run."""

    def __init__(self, lab: SwarmLab, env: StackEnv, log_dir: Path) -> None:
        self.lab, self.env = lab, env
        self.daemon = DaemonProc(env, log_dir / "daemon.log").start()
        self.daemon.wait_state("running", 300)

    def add(self, name: str, *node: str) -> None:
        args = ("--node", *node) if node else ()
        self.env.hubd("user", "add", "--password-stdin", *args, name, input=PASSWORD + "\n")

    def where(self, name: str) -> str | None:
        """The node id of the task running `name`'s server, or None."""
        manager = self.lab.manager_client()
        filters = self.env.names.filters(ROLE_USER_SERVER)
        filters["label"].append(f"{LABEL_USER}={name}")
        services = manager.services.list(filters=filters)
        for service in services:
            for task in service.tasks(filters={"desired-state": "running"}):
                if task["Status"]["State"] == "running":
                    return str(task["NodeID"])
        return None

    def service_spec(self, name: str) -> dict[str, Any]:
        manager = self.lab.manager_client()
        (service,) = manager.services.list(filters={"label": f"{LABEL_USER}={name}"})
        return dict(service.attrs["Spec"])

    def wait_node(self, node_id: str, state: str, timeout: float) -> None:
        """Until hubd's status (what `hubd status` and the tray show) has the node so."""

        def seen(status: Status) -> bool:
            return any(n.id == node_id and n.state == state for n in status.nodes)

        self.daemon.wait_state("running", timeout, where=seen)

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.env.base_url}/hub/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def _gpu_image(lab: SwarmLab) -> None:
    """A GPU image (the user image, told apart by a label) on both nodes, same id: built on
    node1 (no registry, no network), `docker save | docker load` onto node2."""
    derived_image(lab.node1.client(), GPU_IMAGE, lab.images.user, "LABEL io.hubd.test.gpu=1")
    save = subprocess.Popen(
        ["docker", "-H", lab.node1.docker_host, "save", GPU_IMAGE], stdout=subprocess.PIPE
    )
    load = subprocess.run(
        ["docker", "-H", lab.node2.docker_host, "load", "-q"],
        stdin=save.stdout,
        capture_output=True,
        timeout=300,
    )
    assert save.wait(300) == 0 and load.returncode == 0, load.stderr


@pytest.fixture(scope="module")
def hub(swarm_lab: SwarmLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("swarm")
    user_image = swarm_lab.images.user
    _gpu_image(swarm_lab)
    env = swarm_lab.hubd_env(
        tmp,
        allowed_images=(user_image, GPU_IMAGE),
        gpu_images=(GPU_IMAGE,),
        image_nodes=(f"{GPU_IMAGE}=gpu",),
    )
    hub = Hub(swarm_lab, env, tmp)
    try:
        env.hubd("node", "label", swarm_lab.node2.name, "gpu")
        hub.add("ada", swarm_lab.node2.name)
        hub.add("bob")
        yield hub
    finally:
        hub.daemon.stop()
        env.hubd("down", check=False)


@pytest.fixture(scope="module")
def people(hub: Hub) -> Iterator[dict[str, SwarmPerson]]:
    user_image = hub.lab.images.user
    team = {name: SwarmPerson(hub, name, user_image) for name in ("ada", "bob")}
    write_bytes(team["ada"].session, hub.env.base_url, "ada", DATA_NAME, DATA)
    yield team
    for person in team.values():
        person.close()


def test_a_person_homed_on_node2_works_through_the_proxy_on_node1(
    hub: Hub, people: dict[str, SwarmPerson]
) -> None:
    ada, node1, node2 = people["ada"], hub.lab.node1, hub.lab.node2
    assert hub.where("ada") == node2.node_id
    assert hub.where("bob") == node1.node_id
    # dockerspawner #536: the volume is a `type=volume` mount, made by node2's engine.
    mounts = hub.service_spec("ada")["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert [m["Type"] for m in mounts] == ["volume"]
    volume = node2.client().volumes.get(mounts[0]["Source"])
    assert volume.attrs["Labels"][LABEL_USER] == "ada"

    stop_server(ada.session, hub.env.base_url, "ada")
    assert hub.where("ada") is None
    ada.respawn()
    assert hub.where("ada") == node2.node_id
    assert read_file(ada.session, hub.env.base_url, "ada", FILE_NAME) == ada.text
    assert read_bytes(ada.session, hub.env.base_url, "ada", DATA_NAME) == DATA


def test_node2_away_the_hub_and_bob_carry_on_ada_is_told_and_comes_back(
    hub: Hub, people: dict[str, SwarmPerson]
) -> None:
    ada, bob, node2 = people["ada"], people["bob"], hub.lab.node2
    with bob.watch() as watch:
        node2.stop_engine()
        hub.wait_node(node2.node_id, "down", 90)
        # hubd stops ada's server in the hub at once; she reads why it cannot start.
        wait_for(lambda: not server_running(ada.session, hub.env.base_url, "ada"), 60, "ada stop")
        refusal = spawn_with_image(ada.session, hub.env.base_url, "ada", ada.image)
        unreachable = f"Your files are on {node2.name}, which is not reachable right now"
        assert unreachable in refusal, refusal
        assert hub.healthy()
        assert bob.kernel_kept_state() and bob.file_intact()
        node2.start_engine()
        hub.wait_node(node2.node_id, "ready", 90)
        # hubd starts the server that node2 took with it; the hub routes ada to it again.
        wait_for(lambda: hub.where("ada") == node2.node_id, 120, "ada's server back on node2")
    assert watch.result.failed == 0, watch.result
    assert bob.socket.open and bob.kernel_kept_state()
    # Her kernel went with node2 (as after any stop); JupyterLab is back with her files.
    ada.close()
    ada.respawn()
    assert ada.file_intact()
    assert read_bytes(ada.session, hub.env.base_url, "ada", DATA_NAME) == DATA


def test_moving_ada_to_node1_her_files_follow_byte_for_byte(
    hub: Hub, people: dict[str, SwarmPerson]
) -> None:
    ada, node1 = people["ada"], hub.lab.node1
    stop_server(ada.session, hub.env.base_url, "ada")
    hub.env.hubd("user", "move", "ada", "--to", node1.name, "--yes")
    ada.respawn()
    assert hub.where("ada") == node1.node_id
    assert ada.file_intact()
    assert read_bytes(ada.session, hub.env.base_url, "ada", DATA_NAME) == DATA


def test_the_gpu_image_runs_only_on_the_gpu_node(hub: Hub, people: dict[str, SwarmPerson]) -> None:
    ada, node2 = people["ada"], hub.lab.node2
    # ada's files are on node1 now: the GPU image is refused at once, with what to do.
    stop_server(ada.session, hub.env.base_url, "ada")
    refusal = spawn_with_image(ada.session, hub.env.base_url, "ada", GPU_IMAGE)
    assert "runs only on machines labelled 'gpu'" in refusal, refusal
    assert "hubd user move ada --to NODE" in refusal
    # carl lives on node2: his server gets the GPU node's resource.
    hub.add("carl", node2.name)
    carl = SwarmPerson(hub, "carl", GPU_IMAGE)
    try:
        assert hub.where("carl") == node2.node_id
        gpu = carl.socket.execute("import os; print(os.environ['NVIDIA_VISIBLE_DEVICES'])")
        assert gpu.strip() == "all"
        # No Swarm reservation: it would be rejected at the next change to node2.
        assert "Reservations" not in hub.service_spec("carl")["TaskTemplate"]["Resources"]
        hub.env.hubd("node", "label", node2.name, "spare")
        time.sleep(3)  # Swarm's constraint enforcer acts on the node update within this
        assert hub.where("carl") == node2.node_id
        assert carl.kernel_kept_state()
    finally:
        carl.close()
    # carl's files are on node2, which hubd cannot reach to delete them: refused, kept.
    refused = hub.env.hubd("user", "remove", "carl", "--delete-data", "--yes", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("hubd: carl's files are on node2, where hubd cannot delete")
    assert "carl" in hub.env.hubd("user", "list").stdout
