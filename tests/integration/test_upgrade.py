"""Upgrades that cannot break the hub, with someone at work during each one.

No registry is reachable here, so a "newer image" is a local tag that moves (as `:latest` does
when pulled): the config names `<stack>-base:latest`, the tests point it at another stand-in,
and `hubd upgrade --no-pull` compares with what the tag names now.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.images.build import TestImages
from tests.integration.daemon_proc import DaemonProc
from tests.integration.docker_env import StackEnv
from tests.integration.hubclient import (
    StatusPoller,
    kernel_alive,
    login,
    open_lab,
    read_file,
    start_kernel,
    write_file,
)

pytestmark = pytest.mark.integration

PASSWORD = "harbor-violet-engine"


@pytest.fixture
def moving_tag(stack_env: StackEnv) -> Iterator[str]:
    """The hub base image's name in the config: a local tag the tests move."""
    tag = f"{stack_env.names.stack}-base:latest"
    yield tag
    # Only the tag goes, the images stay; it is not there if the test failed early.
    with contextlib.suppress(docker.errors.ImageNotFound):
        stack_env.client.images.remove(tag)


def point(stack_env: StackEnv, tag: str, image: str) -> None:
    repository, version = tag.rsplit(":", 1)
    assert stack_env.client.images.get(image).tag(repository, version)


def jupyterhub_version(stack_env: StackEnv) -> str:
    return str(requests.get(f"{stack_env.base_url}/hub/api/", timeout=10).json()["version"])


def read_pins(stack_env: StackEnv) -> dict[str, object]:
    path = Path(stack_env.env["STATE_DIRECTORY"]) / "image-pins.json"
    return dict(json.loads(path.read_text())["stacks"][stack_env.names.stack])


def someone_at_work(stack_env: StackEnv, name: str) -> tuple[requests.Session, str, str]:
    """`name` logged in, JupyterLab open, a file saved, a kernel running. Returns (session,
    kernel id, server container id)."""
    stack_env.hubd("user", "add", "--password-stdin", name, input=PASSWORD + "\n")
    session = login(stack_env.base_url, name, PASSWORD)
    open_lab(session, stack_env.base_url, name)
    write_file(session, stack_env.base_url, name, "work.txt", "kept through upgrades")
    kernel = start_kernel(session, stack_env.base_url, name)
    server = stack_env.client.containers.get(f"{stack_env.names.user_container_prefix}-{name}")
    return session, kernel, str(server.id)


def assert_still_at_work(
    stack_env: StackEnv, name: str, session: requests.Session, kernel: str, server_id: str
) -> None:
    server = stack_env.client.containers.get(f"{stack_env.names.user_container_prefix}-{name}")
    assert server.id == server_id and server.status == "running"
    assert kernel_alive(session, stack_env.base_url, name, kernel)
    assert read_file(session, stack_env.base_url, name, "work.txt") == "kept through upgrades"
    # The account still logs in on the hub that runs now.
    login(stack_env.base_url, name, PASSWORD)


def test_jupyterhub_5_database_is_migrated_through_the_daemon_and_people_keep_working(
    stack_env: StackEnv, test_images: TestImages, moving_tag: str, tmp_path: Path
) -> None:
    point(stack_env, moving_tag, test_images.hub_base_5)
    stack_env.write_config(hub_base_image=moving_tag)
    stack_env.hubd("up")
    assert jupyterhub_version(stack_env).startswith("5.")
    session, kernel, server_id = someone_at_work(stack_env, "alice")
    hub_image = read_pins(stack_env)["hub_image"]

    # The tag moves (someone pulled `:latest`): neither `up` nor the daemon follows it.
    point(stack_env, moving_tag, test_images.hub_base)
    assert "nothing to change" in stack_env.hubd("up").stderr
    daemon = DaemonProc(stack_env, tmp_path / "daemon.log").start()
    try:
        daemon.wait_state("running")
        assert jupyterhub_version(stack_env).startswith("5.")

        check = stack_env.hubd("upgrade", "--check", "--no-pull")
        assert "asking the running hubd" in check.stderr
        assert "hub image: jupyterhub: 5.4.6 -> 6.1.1" in check.stdout
        update = daemon.status().update
        assert update is not None and update.available
        assert "update:   available (hub image: jupyterhub: 5.4.6 -> 6.1.1" in (
            stack_env.hubd("status").stdout
        )
        # No terminal and no --yes: one clear line, nothing changed.
        refused = stack_env.hubd("upgrade", "--no-pull", check=False)
        assert refused.returncode != 0
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("hubd: an upgrade needs a confirm")
        assert jupyterhub_version(stack_env).startswith("5.")
        assert read_pins(stack_env)["hub_image"] == hub_image

        with StatusPoller(session, stack_env.base_url, "alice", 0.25, 5.0) as poller:  # Lab's pace
            upgraded = stack_env.hubd("upgrade", "--yes", "--no-pull")
        person = poller.result
        print(
            f"alice during the upgrade: {person.failed}/{person.requests} status requests "
            f"failed, longest outage {person.longest_s:.1f} s"
        )
        assert "upgraded" in upgraded.stdout
        # The daemon's progress, shown as `hubd upgrade` without a daemon shows it (issue 23).
        steps = upgraded.stderr
        assert 0 <= steps.find("copying the hub database") < steps.find("starting the new hub")
        assert jupyterhub_version(stack_env) == "6.1.1"
        assert read_pins(stack_env)["hub_image"] != hub_image
        assert_still_at_work(stack_env, "alice", session, kernel, server_id)
        # The proxy is a container of its own: the hub's switch never reaches the person.
        assert person.requests > 0 and person.failed == 0, person
        # The daemon held back while the hub was switched: no restart of its own.
        status = daemon.wait_state("running")
        assert status.restart_count == 0
        assert status.update is not None and status.update.last_ok and not status.update.available
        assert "upgrade:  upgraded on " in stack_env.hubd("status").stdout
        # The throwaway account of the login check is gone again.
        users = stack_env.hubd("user", "list", "--json").stdout
        assert [u["name"] for u in json.loads(users)] == ["alice"]

        assert "up to date" in stack_env.hubd("upgrade", "--check", "--no-pull").stdout
    finally:
        daemon.stop()


def test_failed_upgrades_are_rolled_back_and_people_keep_working(
    stack_env: StackEnv,
    test_images: TestImages,
    moving_tag: str,
    broken_hub_base: str,
    half_migrating_hub_base: str,
    login_breaking_hub_base: str,
) -> None:
    point(stack_env, moving_tag, test_images.hub_base)
    stack_env.write_config(hub_base_image=moving_tag)
    stack_env.hubd("up")
    session, kernel, server_id = someone_at_work(stack_env, "bob")
    hub = stack_env.client.containers.get(stack_env.names.hub_container)
    before = read_pins(stack_env)

    # Up to date: says so and changes nothing.
    check = stack_env.hubd("upgrade", "--check", "--no-pull")
    assert check.stdout.strip() == "up to date: nothing to upgrade"
    assert stack_env.client.containers.get(stack_env.names.hub_container).id == hub.id
    assert read_pins(stack_env) == before
    # Naming another JupyterHub in the config does not switch it by `up` either.
    stack_env.write_config(hub_base_image=test_images.hub_base_5)
    kept = stack_env.hubd("up")
    assert f"kept the hub on {moving_tag}: `hubd upgrade` switches" in kept.stderr
    assert stack_env.client.containers.get(stack_env.names.hub_container).id == hub.id
    assert read_pins(stack_env) == before
    stack_env.write_config(hub_base_image=moving_tag)

    for new_base, why in [
        (broken_hub_base, "the hub exited while starting"),
        (half_migrating_hub_base, "the hub exited while starting"),
        (login_breaking_hub_base, "the login page does not render (HTTP 500)"),
    ]:
        point(stack_env, moving_tag, new_base)
        with StatusPoller(session, stack_env.base_url, "bob", 0.25, 5.0) as poller:
            failed = stack_env.hubd("upgrade", "--yes", "--no-pull", check=False)
        person = poller.result
        print(
            f"bob during the rolled-back upgrade to {new_base}: {person.failed}/"
            f"{person.requests} status requests failed, longest outage {person.longest_s:.1f} s"
        )
        assert failed.returncode != 0
        assert person.requests > 0 and person.failed == 0, person
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("hubd: the upgrade was rolled back") and why in last, last
        assert "Traceback" not in failed.stderr
        # The previous hub runs again on the previous images, healthy, with every account.
        assert read_pins(stack_env) == before
        now = stack_env.client.containers.get(stack_env.names.hub_container)
        assert now.attrs["Config"]["Image"] == before["hub_image"]
        assert requests.get(f"{stack_env.base_url}/hub/health", timeout=5).status_code == 200
        assert_still_at_work(stack_env, "bob", session, kernel, server_id)
        # The failed hub image is gone again; the one in use stays.
        hub_images = stack_env.client.images.list(filters=stack_env.names.filters("hub-image"))
        assert [i.tags for i in hub_images] == [[before["hub_image"]]]
