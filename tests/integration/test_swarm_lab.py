"""The 2-node Swarm lab itself (swarm_lab.py): what the Swarm tests rely on."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from docker.types import EndpointSpec, Mount

from tests.images.build import TestImages
from tests.integration.daemon_proc import DaemonProc
from tests.integration.netns import wait_until
from tests.integration.swarm_lab import (
    BUILTIN_NETWORKS,
    GPU_RESOURCE,
    LabNode,
    SwarmLab,
    remove_stale_labs,
)

pytestmark = pytest.mark.integration

TAG = f"hubdlab{os.getpid()}"


@pytest.fixture(autouse=True)
def clean_lab(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test here leaves the shared lab as it found it."""
    yield
    if "swarm_lab" in request.fixturenames:
        lab: SwarmLab = request.getfixturevalue("swarm_lab")
        lab.reset()


def running_task(lab: SwarmLab, service_id: str) -> dict[str, Any]:
    """The service's running task, once there is one."""
    found: list[dict[str, Any]] = []

    def running() -> bool:
        tasks = lab.manager_client().api.tasks(filters={"service": service_id})
        found[:] = [t for t in tasks if t["Status"]["State"] == "running"]
        return bool(found)

    wait_until(running, 60, interval=0.2)
    return found[0]


def test_two_nodes_ready_with_their_own_identities(
    swarm_lab: SwarmLab, docker_client: docker.DockerClient
) -> None:
    print("lab setup:", {step: round(s, 1) for step, s in swarm_lab.timings.items()})
    nodes = {node.id: node.attrs for node in swarm_lab.manager_client().nodes.list()}
    assert set(nodes) == {swarm_lab.node1.node_id, swarm_lab.node2.node_id}
    assert swarm_lab.node1.node_id != swarm_lab.node2.node_id
    for lab_node in swarm_lab.nodes:
        attrs = nodes[lab_node.node_id]
        assert attrs["Status"]["State"] == "ready"
        assert attrs["Status"]["Addr"] == lab_node.ip
        assert attrs["Description"]["Hostname"] == lab_node.name
        assert lab_node.client().info()["Name"] == lab_node.name
    assert nodes[swarm_lab.node1.node_id]["Spec"]["Role"] == "manager"
    assert nodes[swarm_lab.node2.node_id]["Spec"]["Role"] == "worker"
    # The GPU stand-in is advertised by node2 only.
    generic = nodes[swarm_lab.node2.node_id]["Description"]["Resources"].get("GenericResources")
    kind, value = GPU_RESOURCE.split("=")
    assert generic == [{"NamedResourceSpec": {"Kind": kind, "Value": value}}]
    assert not nodes[swarm_lab.node1.node_id]["Description"]["Resources"].get("GenericResources")
    # The main engine is no part of it.
    main_swarm = docker_client.info()["Swarm"]
    assert main_swarm.get("NodeID", "") not in nodes
    assert main_swarm.get("LocalNodeState") != "active" or main_swarm.get("Cluster", {}).get(
        "ID"
    ) != swarm_lab.manager_client().swarm.attrs.get("ID")


def test_pinned_dnsrr_service_on_node2_is_reached_from_node1_over_an_overlay(
    swarm_lab: SwarmLab, test_images: TestImages
) -> None:
    manager = swarm_lab.manager_client()
    network = manager.networks.create(f"{TAG}-ovl", driver="overlay", attachable=True)
    started = time.monotonic()
    service = manager.services.create(
        test_images.user,
        name=f"{TAG}-web",
        command=["python3", "-m", "http.server", "8000"],
        constraints=[f"node.id=={swarm_lab.node2.node_id}"],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
        networks=[network.id],
    )
    task = running_task(swarm_lab, service.id)
    took = time.monotonic() - started
    assert task["NodeID"] == swarm_lab.node2.node_id
    # Its container runs on node2's engine, from the image loaded there (nothing pulled).
    containers = swarm_lab.node2.client().containers.list(
        filters={"label": f"com.docker.swarm.service.id={service.id}"}
    )
    assert len(containers) == 1
    assert containers[0].image.id == swarm_lab.node2.client().images.get(test_images.user).id
    address = next(
        a["Addresses"][0].split("/")[0]
        for a in task["NetworksAttachments"]
        if a["Network"]["ID"] == network.id
    )
    # A container on node1 on the same overlay finds the task by DNS and reaches it.
    probe = (
        "import socket, sys, time, urllib.request\n"
        f"assert socket.gethostbyname('tasks.{TAG}-web') == '{address}'\n"
        "for attempt in range(50):\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://{address}:8000/', timeout=2).read()\n"
        "        sys.exit(0)\n"
        "    except OSError:\n"
        "        time.sleep(0.2)\n"
        "sys.exit('not reached')\n"
    )
    output = swarm_lab.node1.client().containers.run(
        test_images.user,
        ["python3", "-c", probe],
        name=f"{TAG}-probe",
        network=network.name,
        stderr=True,
    )
    assert output == b""
    print(f"pinned service running on node2 in {took:.1f} s")


def test_node2_stopped_shows_down_and_comes_back_ready(swarm_lab: SwarmLab) -> None:
    node2 = swarm_lab.node2
    node2.stop_engine()
    assert not node2.engine_running()
    down = node2.wait_status("down", 60)
    started = time.monotonic()
    node2.start_engine()
    assert node2.status() == "ready"
    ready = time.monotonic() - started
    assert node2.client().info()["Swarm"]["NodeID"] == node2.node_id
    print(f"node2 down after {down:.1f} s, ready again {ready:.1f} s after its start")


def test_node2_killed_comes_back_and_runs_its_service_again(
    swarm_lab: SwarmLab, test_images: TestImages
) -> None:
    """A node that loses power: engine killed (its containers keep running meanwhile)."""
    node2 = swarm_lab.node2
    service = swarm_lab.manager_client().services.create(
        test_images.user,
        name=f"{TAG}-pinned",
        command=["sleep", "600"],
        constraints=[f"node.id=={node2.node_id}"],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
    )
    first = running_task(swarm_lab, service.id)
    node2.stop_engine(kill=True)
    down = node2.wait_status("down", 60)
    node2.start_engine()
    again = running_task(swarm_lab, service.id)
    assert again["NodeID"] == node2.node_id
    print(f"killed node2 down after {down:.1f} s; task {first['ID'][:8]} -> {again['ID'][:8]}")


def test_reset_removes_what_tests_made(swarm_lab: SwarmLab, test_images: TestImages) -> None:
    node1, node2 = swarm_lab.node1, swarm_lab.node2
    manager = swarm_lab.manager_client()
    overlay = manager.networks.create(f"{TAG}-rnet", driver="overlay", attachable=True)
    service = manager.services.create(
        test_images.user,
        name=f"{TAG}-rsvc",
        command=["sleep", "600"],
        constraints=[f"node.id=={node2.node_id}"],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
        networks=[overlay.id],
        mounts=[Mount("/data", f"{TAG}-svol", type="volume")],
    )
    running_task(swarm_lab, service.id)
    node1.client().containers.run(
        test_images.user,
        ["sleep", "600"],
        detach=True,
        network=overlay.name,
        volumes={f"{TAG}-cvol": {"bind": "/data", "mode": "rw"}},
    )
    node2.client().networks.create(f"{TAG}-bridge")
    manager.secrets.create(name=f"{TAG}-secret", data=b"x")
    node1.client().images.get(test_images.user).tag(f"{TAG}/extra", "1")
    node = manager.nodes.get(node2.node_id)
    node.update(
        {**node.attrs["Spec"], "Labels": {"io.hubd.home.s.u": "true"}, "Availability": "drain"}
    )

    seconds = swarm_lab.reset()

    assert not manager.services.list()
    assert not manager.secrets.list()
    for lab_node in swarm_lab.nodes:
        client = lab_node.client()
        assert not client.containers.list(all=True)
        assert not client.volumes.list()
        assert {n.name for n in client.networks.list()} <= BUILTIN_NETWORKS
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert tags == set(lab_node.images)
    for attrs in (n.attrs for n in manager.nodes.list()):
        assert not attrs["Spec"].get("Labels")
        assert attrs["Spec"]["Availability"] == "active"
    print(f"reset took {seconds:.1f} s")


def test_reset_forms_the_swarm_again(swarm_lab: SwarmLab) -> None:
    """After a test took the Swarm apart, or removed node2 behind its engine's back."""

    def members() -> dict[str, str]:
        nodes = swarm_lab.manager_client().nodes.list()
        return {n.id: n.attrs["Status"]["State"] for n in nodes}

    swarm_lab.take_apart()
    assert swarm_lab.node1.client().info()["Swarm"]["LocalNodeState"] == "inactive"
    swarm_lab.reset()
    assert members() == {swarm_lab.node1.node_id: "ready", swarm_lab.node2.node_id: "ready"}
    swarm_lab.manager_client().nodes.get(swarm_lab.node2.node_id).remove(force=True)
    swarm_lab.reset()
    assert members() == {swarm_lab.node1.node_id: "ready", swarm_lab.node2.node_id: "ready"}


def test_hubd_runs_its_stack_on_node1_in_swarm_mode(swarm_lab: SwarmLab, tmp_path: Path) -> None:
    env = swarm_lab.hubd_env(tmp_path)
    assert env.base_url == f"http://{swarm_lab.node1.ip}:{env.config.port}"
    daemon = DaemonProc(env, tmp_path / "daemon.log").start()
    try:
        daemon.wait_state("running", 300)
        assert requests.get(f"{env.base_url}/hub/health", timeout=5).status_code == 200
        node1 = swarm_lab.node1.client()
        for name in (env.names.hub_container, env.names.proxy_container):
            assert node1.containers.get(name).status == "running"
        # Swarm mode: the stack's engine is the manager (hubd/stack/lifecycle.py).
        assert env.stack().swarm_node_id() == swarm_lab.node1.node_id
        assert not swarm_lab.node2.client().containers.list()
    finally:
        daemon.stop()


def tiny_image(node: LabNode) -> str:
    """An image of the host's `sleep` and its libc (no test image needed: a bare lab)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in (
            "/usr/bin/sleep",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
        ):
            info = tar.gettarinfo(os.path.realpath(path), arcname=path.lstrip("/"))
            with open(os.path.realpath(path), "rb") as file:
                tar.addfile(info, file)
    ref = f"{TAG}/tiny:1"
    repository, tag = ref.split(":")
    node.client().api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag=tag, changes=['CMD ["/usr/bin/sleep", "600"]']
    )
    return ref


def test_close_leaves_nothing_behind(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    lab = SwarmLab(docker_client, test_images, load_images=False)
    try:
        assert lab.net is not None
        tag, workdir, root_port = lab.net.tag, lab.workdir, lab.root_port
        cgroups = [node.cgroup_parent for node in lab.nodes]
        pids = [node.pid() for node in lab.nodes]
        for node in lab.nodes:
            tiny_image(node)
        container = lab.node1.client().containers.run(f"{TAG}/tiny:1", detach=True)
        service = lab.manager_client().services.create(
            f"{TAG}/tiny:1",
            constraints=[f"node.id=={lab.node2.node_id}"],
            endpoint_spec=EndpointSpec(mode="dnsrr"),
        )
        running_task(lab, service.id)
        container.reload()
        pids.append(container.attrs["State"]["Pid"])
    finally:
        lab.close()
    assert not any(line.startswith(tag) for line in _lines(["ip", "netns", "list"]))
    assert subprocess.run(["ip", "link", "show", root_port], capture_output=True).returncode != 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not [p for p in Path("/proc").glob("[0-9]*") if _mentions(p, str(workdir))]
    assert str(workdir) not in Path("/proc/self/mountinfo").read_text()
    assert not workdir.exists()
    assert not [c for c in cgroups if list(Path("/sys/fs/cgroup").glob(f"*/{c}"))]


def _lines(argv: list[str]) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()


def _mentions(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


_ABANDONED_LAB = """
import json, sys, time, docker
from tests.images.build import ensure_test_images
from tests.integration.swarm_lab import SwarmLab
from tests.integration.test_swarm_lab import tiny_image
main = docker.from_env(timeout=120)
lab = SwarmLab(main, ensure_test_images(main, log=lambda line: None), load_images=False)
container = lab.node2.client().containers.run(tiny_image(lab.node2), detach=True)
container.reload()
pids = [node.pid() for node in lab.nodes] + [container.attrs["State"]["Pid"]]
print(json.dumps({"tag": lab.net.tag, "workdir": str(lab.workdir), "port": lab.root_port,
                  "cgroups": [n.cgroup_parent for n in lab.nodes], "pids": pids}), flush=True)
time.sleep(600)
"""


def test_a_lab_whose_process_was_killed_is_removed_by_the_next(tmp_path: Path) -> None:
    """A pytest killed outright leaves engines, a container, mounts and namespaces: the next
    lab (remove_stale_labs, which SwarmLab runs first) removes them."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ABANDONED_LAB], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        left = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    workdir = Path(left["workdir"])
    assert all(Path(f"/proc/{pid}").exists() for pid in left["pids"])  # it did leave them
    remove_stale_labs()
    assert not any(line.startswith(left["tag"]) for line in _lines(["ip", "netns", "list"]))
    assert subprocess.run(["ip", "link", "show", left["port"]], capture_output=True).returncode
    # Killed; gone once their new parent (init) has reaped them.
    wait_until(lambda: not [pid for pid in left["pids"] if Path(f"/proc/{pid}").exists()], 10)
    assert not [p for p in Path("/proc").glob("[0-9]*") if _mentions(p, str(workdir))]
    assert str(workdir) not in Path("/proc/self/mountinfo").read_text()
    assert not workdir.exists()
    assert not [c for c in left["cgroups"] if list(Path("/sys/fs/cgroup").glob(f"*/{c}"))]
