"""Issue 24: a class of 40 on one machine. Everybody gets a Lab (there was a cliff at the 30th
person: the engine's default address pools), the hub is recreated with people at work, and
a refused start reads as a sentence on the person's spawn page."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
import requests

from hubd.stack.naming import LABEL_ROLE, ROLE_USER_NETWORK
from hubd.stack.subnets import host_networks
from tests.images.build import TestImages
from tests.integration.classroom import PASSWORD, add_accounts, arrive, people
from tests.integration.docker_env import StackEnv, derived_image, own_stack
from tests.integration.hubclient import (
    SPAWN_DEADLINE_S,
    login,
    open_lab,
    page_text,
    spawn_with_image,
    stop_server,
)

pytestmark = pytest.mark.integration

CLASS_SIZE = 40
LOGIN_THREADS = 4


def _person_subnets(env: StackEnv) -> dict[str, str]:
    found = {}
    for network in env.client.api.networks(filters=env.names.filters(ROLE_USER_NETWORK)):
        assert network["Labels"][LABEL_ROLE] == ROLE_USER_NETWORK
        found[network["Name"]] = network["IPAM"]["Config"][0]["Subnet"]
    return found


def _connects(client: docker.DockerClient, container: str, host: str, port: int) -> bool:
    code = (
        "import socket,sys\n"
        f"s=socket.socket();s.settimeout(3)\n"
        f"sys.exit(0 if s.connect_ex(({host!r},{port}))==0 else 1)\n"
    )
    result = client.containers.get(container).exec_run(["python3", "-c", code])
    return bool(result.exit_code == 0)


@pytest.fixture(scope="module")
def class_hub(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    test_images: TestImages,
) -> Iterator[StackEnv]:
    with own_stack(
        tmp_path_factory.mktemp("class"), docker_client, test_images, mem_limit="512M"
    ) as env:
        # A hang guard only: 40 Labs on a loaded 2-core CI machine can take minutes each.
        env.env["HUBD_TIMING"] = "hub_spawn_timeout_s=600"
        env.hubd("up")
        yield env


# Only a hang guard: about 3 minutes on an idle 2-core machine (see the report's figures).
@pytest.mark.timeout(1800)
def test_forty_people_each_get_a_lab_then_the_hub_is_recreated(class_hub: StackEnv) -> None:
    env = class_hub
    names = people(CLASS_SIZE)
    mark = time.monotonic()
    add_accounts(env.stack(), names)
    print(f"\n40 accounts: {time.monotonic() - mark:.1f} s", flush=True)
    keep_running = {"p01", "p02"}  # at work while the hub is recreated; isolation checked

    def one_person(name: str) -> float:
        arrival = arrive(env.base_url, name)
        if name not in keep_running:
            stop_server(arrival.session, env.base_url, name)
        print(f"{name}: login->Lab {arrival.login_to_lab_s:.1f} s", flush=True)
        return arrival.login_to_lab_s

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=LOGIN_THREADS) as pool:
        durations = dict(zip(names, pool.map(one_person, names), strict=True))
    print(
        f"\n40 logins with {LOGIN_THREADS} at a time: {time.monotonic() - started:.1f} s, "
        f"login->Lab max {max(durations.values()):.1f} s"
    )
    assert set(durations) == set(names)

    # Every person's network is a /29 of one private block; more than the ~31 networks the
    # engine's default pools hold.
    subnets = _person_subnets(env)
    assert len(subnets) == CLASS_SIZE
    nets = [ipaddress.IPv4Network(s) for s in subnets.values()]
    assert {n.prefixlen for n in nets} == {29}
    block = ipaddress.IPv4Network(env.stack().hub.user_network_block)
    assert all(n.subnet_of(block) for n in nets)
    assert len(set(nets)) == CLASS_SIZE

    # ... and nothing else of this machine is in it (people's networks of other stacks on this
    # engine may share the block: their bridges' routes are theirs).
    def strangers() -> list[ipaddress.IPv4Network]:
        routes = host_networks()  # read first: a network made after it is listed below
        peoples = [
            ipaddress.IPv4Network(pool["Subnet"])
            for net in env.client.api.networks(
                filters={"label": [f"{LABEL_ROLE}={ROLE_USER_NETWORK}"]}
            )
            for pool in (net.get("IPAM") or {}).get("Config") or []
        ]
        return [
            route
            for route in routes
            if block.overlaps(route) and not any(route.subnet_of(p) for p in peoples)
        ]

    # Other stacks' people's networks come and go meanwhile: one that went between the two
    # readings is a passing stranger, so the question is asked again before it counts.
    for _ in range(20):
        found = strangers()
        if not found:
            break
        time.sleep(0.5)
    assert not found, found

    # The hub is recreated (a config change) while p01 and p02 keep working.
    first = login(env.base_url, "p01", PASSWORD)
    open_lab(first, env.base_url, "p01")
    old_hub = env.client.containers.get(env.names.hub_container).id
    env.write_config(cull_idle_timeout=900)
    started = time.monotonic()
    env.hubd("up")
    print(f"hub recreated with 40 people's networks: `hubd up` {time.monotonic() - started:.1f} s")
    assert env.client.containers.get(env.names.hub_container).id != old_hub
    # Networks without a running server went; the new hub is on the running servers' ones.
    assert set(_person_subnets(env)) == {env.names.user_network_prefix + n for n in keep_running}
    lab = first.get(f"{env.base_url}/user/p01/api/contents", timeout=30)
    assert lab.status_code == 200, lab.text
    again = login(env.base_url, "p01", PASSWORD)
    open_lab(again, env.base_url, "p01")

    # Isolation: p01's server reaches the hub but not p02's server.
    prefix = env.names.user_container_prefix
    p02 = env.client.containers.get(f"{prefix}-p02")
    p02_ip = next(iter(p02.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert _connects(env.client, f"{prefix}-p01", env.names.hub_container, 8081)
    assert not _connects(env.client, f"{prefix}-p01", p02_ip, 8888)

    # A person who comes back after the restart gets a Lab on a new /29.
    arrive(env.base_url, "p03")
    assert ipaddress.IPv4Network(
        _person_subnets(env)[env.names.user_network_prefix + "p03"]
    ).subnet_of(block)


def _spawn_failure_text(env: StackEnv, session: requests.Session, name: str) -> str:
    """What the person's spawn page says once their start has failed: the last message of the
    progress stream the page shows, then the page itself as a reload shows it."""
    xsrf = session.cookies.get("_xsrf", path="/hub/") or ""
    with session.get(
        f"{env.base_url}/hub/api/users/{name}/server/progress",
        headers={"X-XSRFToken": xsrf},
        stream=True,
        timeout=SPAWN_DEADLINE_S,
    ) as stream:
        events = [
            json.loads(line[len("data:") :])
            for line in stream.iter_lines(decode_unicode=True)
            if line and line.startswith("data:")
        ]
    assert events and events[-1].get("failed"), events
    streamed = str(events[-1]["message"])
    page = page_text(session.get(f"{env.base_url}/hub/spawn-pending/{name}", timeout=30).text)
    # The page's own words about it: "The latest attempt ... has failed. <why> Would you ..."
    said = page.partition("has failed.")[2].partition("Would you like")[0].strip()
    assert said, page
    return f"{streamed} | {said}"


def _failure(env: StackEnv, session: requests.Session, name: str, image: str) -> str:
    """Start with `image` on the spawn form; what the person reads: the form again with the
    hub's words when the start failed at once, else the spawn page's once it has failed."""
    refused = spawn_with_image(session, env.base_url, name, image)
    if refused:
        said = refused.partition("Error:")[2].partition("Select an image")[0].strip()
        assert said, refused
        return said
    return _spawn_failure_text(env, session, name)


def test_a_refused_start_reads_as_a_sentence(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    gpu_image = derived_image(
        docker_client, "hubd-test/gpu-user:1", test_images.user, "LABEL io.hubd.test.gpu=1"
    )
    # A block of two /29s: a third person's network has no room. Picked free on this machine.
    block = _free_tiny_block(docker_client)
    with own_stack(
        tmp_path,
        docker_client,
        test_images,
        allowed_images=[test_images.user, gpu_image],
        gpu_images=[gpu_image],
        user_network_block=block,
        mem_limit="512M",
    ) as env:
        mark = time.monotonic()
        env.hubd("up")
        print(f"\nhubd up {time.monotonic() - mark:.1f} s")
        add_accounts(env.stack(), ["ann", "bo", "cy"])

        # The GPU image on an engine without NVIDIA's runtime: the engine refuses.
        ann = login(env.base_url, "ann", PASSWORD)
        text = _failure(env, ann, "ann", gpu_image)
        assert "cannot give servers a GPU" in text, text
        for engine_words in ("device driver", "Error", "http", "[[gpu]]"):
            assert engine_words not in text, text
        logs = env.client.containers.get(env.names.hub_container).logs(tail=300).decode()
        assert "could not select device driver" in logs  # the owner sees the engine's text
        print(f"gpu refusal read {time.monotonic() - mark:.1f} s")

        bo = login(env.base_url, "bo", PASSWORD)
        assert spawn_with_image(bo, env.base_url, "bo", test_images.user) == ""
        open_lab(bo, env.base_url, "bo")
        print(f"bo's lab {time.monotonic() - mark:.1f} s")

        # The block is full now (ann's and bo's networks): cy reads a sentence.
        cy = login(env.base_url, "cy", PASSWORD)
        text = _failure(env, cy, "cy", test_images.user)
        assert "no room for another server" in text, text
        assert block not in text and "/29" not in text
        logs = env.client.containers.get(env.names.hub_container).logs(tail=300).decode()
        assert "set user_network_block" in logs

        # Memory: a limit the owner sets is promised in full. With bo's server running, a
        # second one would promise more than the machine has: refused with a sentence, not
        # started and OOM-killed later (active_server_limit set high, so it is not what stops
        # it; the check comes before the network's).
        total = int(env.client.info()["MemTotal"])
        env.write_config(mem_limit=f"{total * 6 // 10 // 1024**2}M", active_server_limit=10)
        env.hubd("up")
        cy = login(env.base_url, "cy", PASSWORD)
        text = _failure(env, cy, "cy", test_images.user)
        assert "memory is taken" in text, text
        for engine_words in ("bytes", "mem_limit", "Error"):
            assert engine_words not in text, text


def _free_tiny_block(client: docker.DockerClient) -> str:
    used = [
        ipaddress.IPv4Network(pool["Subnet"])
        for net in client.api.networks()
        for pool in (net.get("IPAM") or {}).get("Config") or []
        if "." in str(pool.get("Subnet"))
    ] + host_networks()
    for third in range(256):
        candidate = ipaddress.IPv4Network(f"10.99.{third}.0/28")
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise AssertionError("no free /28 in 10.99.0.0/16 for the test")


def test_settings_carry_the_limits(class_hub: StackEnv) -> None:
    hub = class_hub.client.containers.get(class_hub.names.hub_container)
    from hubd.stack.containers import read_file
    from hubd.stack.settings import SETTINGS_DIR

    settings = json.loads(read_file(hub, f"{SETTINGS_DIR}/settings.json") or "{}")
    assert settings["concurrent_spawn_limit"] >= 4
    assert settings["active_server_limit"] >= 10  # 512M each into this machine's memory
