"""Rootless Docker (Debian's docker.io, `dockerd-rootless.sh`) reached through a Docker
context, as its setup tool leaves it: `hubd run` brings the stack up on that engine, the
docker gate mounts its socket (/run/user/<uid>/docker.sock), a person logs in and spawns, and
the main engine is untouched. The same login and spawn as test_engine_context.py's.

The engine runs as an account of its own (tests/integration/rootless_engine.py). hubd runs as
root here, talking to that socket through the context: the test's Python lives under /root,
which the account cannot read; hubd as a non-root person is test_quickstart.py's.

What it costs is images, not the engine: hubd finds its hub image already there (built on the
main engine, loaded, tagged as this stack's), since a build on the rootless engine has no
native overlay diff and reaches PyPI through slirp4netns (68-98 s here, loaded). The image
store comes from a cache (rootless_engine.py): ~21 s in all, ~100 s the first time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from hubd.stack.images import ensure_hub_image, hub_image_tag
from hubd.stack.naming import StackNames
from hubd.stack.progress import LogReporter
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration.engine_control import main_engine_view
from tests.integration.engine_person import (
    HubdRun,
    assert_main_engine_untouched,
    gate_socket_sources,
    person_env,
    use_context,
)
from tests.integration.rootless_engine import RootlessEngine, real_uid, remove_stale_rootless
from tests.integration.swarm_lab import PREBUILT_STACK
from tests.patience import patient

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PASSWORD = "rootless-pass-3"
CONTEXT = "rootless"


@pytest.fixture(scope="module")
def rootless_engine(
    docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[tuple[RootlessEngine, str, dict[str, float]]]:
    """A started rootless engine with the stack's images; its prebuilt hub image's tag."""
    timings: dict[str, float] = {}
    start = time.monotonic()
    remove_stale_rootless()
    engine = RootlessEngine()
    try:
        engine.create_account()
        timings["account"] = time.monotonic() - start
        # The Swarm lab's prebuilt hub image (the same content hash as a stack of ours).
        hub, _ = ensure_hub_image(
            docker_client, StackNames(PREBUILT_STACK), test_images.hub_base, LogReporter(Timing())
        )
        timings["hub image on the main engine"] = time.monotonic() - start
        base = [test_images.hub_base, test_images.proxy, test_images.user]
        key = engine.image_key(docker_client, base)
        cached = engine.take_images(key)
        timings["image cache" if cached else "no image cache"] = time.monotonic() - start
        engine.start()
        timings["engine started"] = time.monotonic() - start
        loaded = engine.load_images([*base, hub])
        timings[f"loaded {len(loaded)} image(s)"] = time.monotonic() - start
        yield engine, hub, timings
        start = time.monotonic()
        if engine.running():  # else the store may be half written: deleted with the rest
            engine.put_back_images(key, keep=[*base, hub])
            timings["store back in the cache"] = time.monotonic() - start
    finally:
        engine.close()
        timings["closed"] = time.monotonic() - start
        print(f"\nrootless engine (set up, then put back): {timings}")


def test_hubd_run_on_rootless_docker(
    rootless_engine: tuple[RootlessEngine, str, dict[str, float]],
    docker_client: docker.DockerClient,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    engine, prebuilt, _timings = rootless_engine
    rootless = engine.client()
    info = rootless.info()
    assert "name=rootless" in info["SecurityOptions"], info["SecurityOptions"]
    # Native overlay2 (kernel >= 5.11, userxattr): vfs would copy every layer in full.
    assert info["Driver"] == "overlay2", info["Driver"]
    main_before = main_engine_view(docker_client)
    stack = engine.name  # how a run that died is cleaned up: rootless_engine.py
    names = StackNames(stack)
    # The tag hubd looks for on this engine: so it does not build (see the module's text).
    tag = hub_image_tag(names, rootless.images.get(test_images.hub_base).id)
    assert tag.rsplit(":", 1)[1] == prebuilt.rsplit(":", 1)[1]
    rootless.images.get(prebuilt).tag(names.hub_image_repo, tag.rsplit(":", 1)[1])

    env = person_env(tmp_path, stack, test_images)
    use_context(env, CONTEXT, engine.docker_host)  # what dockerd-rootless-setuptool.sh says

    # The port is published by rootlesskit's port driver, on this machine's loopback too.
    base = f"http://127.0.0.1:{env['HUBD_PORT']}"
    with HubdRun(env, tmp_path / "hubd-run.log") as run:
        healthy_s = run.wait_healthy(base, patient(75))
        healthy = time.monotonic()
        # The gate mounts the rootless engine's socket, not /var/run/docker.sock.
        assert gate_socket_sources(rootless, names) == {str(engine.socket)}
        # hubd built nothing here: no hub image of this stack's own.
        assert not rootless.images.list(filters={"label": f"io.hubd.stack={stack}"})

        status = run.hubd("status")
        assert (
            f"Docker Engine (rootless) at {engine.docker_host} (Docker context '{CONTEXT}')"
            in status.stdout
        ), status
        run.add_person_and_open_lab(base, "ann", PASSWORD)
        servers = [
            c for c in rootless.containers.list() if c.name.startswith(names.user_container_prefix)
        ]
        assert [c.status for c in servers] == ["running"]  # ann's server, on this engine
        # The engine's user namespace: the hub's root is the account on this machine, ann's
        # jovyan (1000) the account's subordinate id 999; nothing runs as the machine's root.
        hub_pid = rootless.containers.get(names.hub_container).attrs["State"]["Pid"]
        server_pid = servers[0].attrs["State"]["Pid"]
        assert real_uid(hub_pid) == engine.uid
        assert real_uid(server_pid) == engine.subids[999]
        print(
            f"\nrootless: hubd run to healthy {healthy_s:.1f} s, "
            f"login + spawn {time.monotonic() - healthy:.1f} s"
        )
    assert_main_engine_untouched(docker_client, main_before, stack)
