"""An engine reached only through a Docker context: a second `dockerd` with a socket of its
own (own data-root, exec-root, pidfile, network namespace), chosen with `docker context create`
and `docker context use` (no DOCKER_HOST anywhere). `hubd run` brings the stack up on that
engine, the docker gate mounts that engine's socket, a person logs in and spawns, and the first
engine is untouched.

The engine runs in a network namespace of its own, as the Swarm lab's do: a second dockerd in
the host's namespace would delete the host's `docker0` at its start (`--bridge=none`) or fight
over iptables. hubd runs in that namespace too (it probes the hub on 127.0.0.1); the person
reaches the hub from here over the lab's LAN. Its images come from the Swarm lab's image cache
or a `docker save | docker load`; the hub image is built once on the main engine (the
namespace has no way to PyPI) and loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from hubd.stack.docker_gate import gate_container_name
from hubd.stack.images import ensure_hub_image, hub_image_tag
from hubd.stack.naming import StackNames
from hubd.stack.progress import LogReporter
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration import hubclient, netns
from tests.integration.docker_env import free_port
from tests.integration.engine_control import main_engine_view
from tests.integration.swarm_lab import PREBUILT_STACK, LabNode, SwarmLab, _free_subnet

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.netns]

PASSWORD = "context-pass-7"


class OneEngine:
    """The Swarm lab's image loading (cache, save | load) for one engine of our own."""

    _image_key = SwarmLab._image_key
    _restore_images = SwarmLab._restore_images
    _load_missing_images = SwarmLab._load_missing_images
    _cache_images = SwarmLab._cache_images

    def __init__(self, main: docker.DockerClient, node: LabNode, workdir: Path, hub: str) -> None:
        self.main, self.nodes, self.workdir, self.hub_image = main, [node], workdir, hub


@pytest.fixture
def context_engine(
    docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[tuple[netns.Lab, LabNode, dict[str, float]]]:
    timings: dict[str, float] = {}
    start = time.monotonic()
    subnet = _free_subnet()
    lab = netns.Lab("-ctx")
    root_port = f"hc{os.getpid()}"[:15]
    node: LabNode | None = None
    try:
        lab.add_root_port(root_port, f"{subnet}.1/24")
        host = lab.add_host("e2", f"{subnet}.11", holder=False)
        engines = lab.workdir / "engines"  # netns.Host has the lab's e2/ folder already
        engines.mkdir()
        node = LabNode(
            types.SimpleNamespace(workdir=engines),  # type: ignore[arg-type]  # only workdir used
            host,
            [],
        )
        # Hub images of the Swarm lab's prebuilt stack: the same content hash as ours.
        hub, _ = ensure_hub_image(
            docker_client, StackNames(PREBUILT_STACK), test_images.hub_base, LogReporter(Timing())
        )
        images = [test_images.hub_base, hub, test_images.proxy, test_images.user]
        node.images = [*images, test_images.restic]  # the lab's node1 set: its cache key
        loader = OneEngine(docker_client, node, lab.workdir, hub)
        loader._restore_images()  # type: ignore[misc]  # SwarmLab's, borrowed by duck type
        timings["image cache"] = time.monotonic() - start
        node.start_engine()
        loader._load_missing_images()  # type: ignore[misc]  # as above
        timings["engine + images"] = time.monotonic() - start
        yield lab, node, timings
    finally:
        if node is not None:
            node.stop_engine()
            node.close_client()
        lab.close()
        subprocess.run(["ip", "link", "del", root_port], capture_output=True, check=False)


def test_hubd_run_on_an_engine_reached_only_through_a_context(
    context_engine: tuple[netns.Lab, LabNode, dict[str, float]],
    docker_client: docker.DockerClient,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    _lab, node, timings = context_engine
    main_before = main_engine_view(docker_client)
    stack = f"hubdctx{os.getpid()}"
    names = StackNames(stack)
    e2 = node.client()
    prebuilt = hub_image_tag(StackNames(PREBUILT_STACK), e2.images.get(test_images.hub_base).id)
    e2.images.get(prebuilt).tag(names.hub_image_repo, prebuilt.rsplit(":", 1)[1])

    # A person's Docker CLI config, with the engine as the current context.
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG")
    }
    env.update(
        HOME=str(home),
        HUBD_HUB_BASE_IMAGE=test_images.hub_base,
        HUBD_USER_IMAGE=test_images.user,
        HUBD_PROXY_IMAGE=test_images.proxy,
        HUBD_STACK_NAME=stack,
        HUBD_MDNS_ENABLED="false",
        # Plain HTTP: this test is about the engine; HTTPS is test_https.py's.
        HUBD_TLS="off",
        HUBD_CULL_IDLE_TIMEOUT="0",
        HUBD_PORT=str(free_port()),
        CONFIGURATION_DIRECTORY=str(tmp_path / "etc"),
        STATE_DIRECTORY=str(tmp_path / "state"),
        RUNTIME_DIRECTORY=str(tmp_path / "run"),
        LOGS_DIRECTORY=str(tmp_path / "log"),
    )
    for argv in (
        ["docker", "context", "create", "lab-e2", "--docker", f"host={node.docker_host}"],
        ["docker", "context", "use", "lab-e2"],
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
    assert "DOCKER_HOST" not in env

    port = int(env["HUBD_PORT"])
    log = tmp_path / "hubd-run.log"
    hubd = [sys.executable, "-m", "hubd"]
    started = time.monotonic()
    with log.open("wb") as out:
        run = subprocess.Popen(
            node.command(["env", "-i", *(f"{k}={v}" for k, v in env.items()), *hubd, "run"]),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://{node.ip}:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert run.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/hub/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        healthy = time.monotonic()

        # The gate mounts this engine's socket, not /var/run/docker.sock.
        gate = e2.containers.get(gate_container_name(names))
        sources = {m["Source"] for m in gate.attrs["Mounts"] if m["Destination"].endswith(".sock")}
        assert sources == {str(node.socket)}, gate.attrs["Mounts"]

        status = subprocess.run(
            node.command(["env", "-i", *(f"{k}={v}" for k, v in env.items()), *hubd, "status"]),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"{node.docker_host} (Docker context 'lab-e2')" in status.stdout, status

        as_person = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *hubd]
        added = subprocess.run(
            node.command([*as_person, "user", "add", "ann", "--admin", "--password-stdin"]),
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert added.returncode == 0, added.stderr
        session = hubclient.login(base, "ann", PASSWORD)
        assert hubclient.open_lab(session, base, "ann").status_code == 200
        prefix = names.user_container_prefix
        servers = [c for c in e2.containers.list() if c.name.startswith(prefix)]
        assert [c.status for c in servers] == ["running"]  # ann's server, on this engine
        print(
            f"\ncontext engine: {timings}; hubd run to healthy {healthy - started:.1f} s, "
            f"login + spawn {time.monotonic() - healthy:.1f} s"
        )
    finally:
        os.killpg(run.pid, 15)
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, 9)
    # The first engine: nothing of this stack, no restart, its default bridge still there.
    assert main_engine_view(docker_client) == main_before
    assert not docker_client.containers.list(all=True, filters={"label": f"io.hubd.stack={stack}"})
    assert not docker_client.volumes.list(filters={"label": f"io.hubd.stack={stack}"})
