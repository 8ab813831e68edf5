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
import time
import types
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from hubd.stack.images import ensure_hub_image, hub_image_tag
from hubd.stack.naming import StackNames
from hubd.stack.progress import LogReporter
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration import netns
from tests.integration.engine_control import main_engine_view
from tests.integration.engine_person import (
    HubdRun,
    assert_main_engine_untouched,
    gate_socket_sources,
    person_env,
    use_context,
)
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
    env = person_env(tmp_path, stack, test_images)
    use_context(env, "lab-e2", node.docker_host)

    base = f"http://{node.ip}:{env['HUBD_PORT']}"
    with HubdRun(env, tmp_path / "hubd-run.log", wrap=node.command) as run:
        healthy_s = run.wait_healthy(base, 300)
        healthy = time.monotonic()
        # The gate mounts this engine's socket, not /var/run/docker.sock.
        assert gate_socket_sources(e2, names) == {str(node.socket)}
        status = run.hubd("status")
        assert f"{node.docker_host} (Docker context 'lab-e2')" in status.stdout, status
        run.add_person_and_open_lab(base, "ann", PASSWORD)
        prefix = names.user_container_prefix
        servers = [c for c in e2.containers.list() if c.name.startswith(prefix)]
        assert [c.status for c in servers] == ["running"]  # ann's server, on this engine
        print(
            f"\ncontext engine: {timings}; hubd run to healthy {healthy_s:.1f} s, "
            f"login + spawn {time.monotonic() - healthy:.1f} s"
        )
    assert_main_engine_untouched(docker_client, main_before, stack)
