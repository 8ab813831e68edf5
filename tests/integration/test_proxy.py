"""configurable-http-proxy in a container of its own, its secret, and the move of a
stack made by an earlier hubd (proxy inside the hub) to this layout."""

from __future__ import annotations

import json

import pytest
import requests

from hubd.stack.containers import read_file
from hubd.stack.naming import ROLE_PROXY, ROLE_PROXY_STANDBY
from hubd.stack.settings import PROXY_TOKEN_FILE
from tests.integration.continuity import Person
from tests.integration.docker_env import StackEnv
from tests.integration.hubclient import KernelSocket
from tests.integration.tutorial_stack import (
    make_publishing_proxy_stack,
    make_single_container_stack,
)

pytestmark = pytest.mark.integration

PASSWORD = "meadow-copper-violin"


def test_only_the_front_publishes_the_port_and_the_token_stays_secret(
    stack_env: StackEnv,
) -> None:
    stack_env.hubd("up")
    client, names = stack_env.client, stack_env.names
    proxy = client.containers.get(names.proxy_container)
    hub = client.containers.get(names.hub_container)
    front = client.containers.get(names.front_container)
    assert proxy.labels["io.hubd.role"] == ROLE_PROXY
    assert proxy.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert front.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert front.attrs["HostConfig"]["PortBindings"]
    assert not proxy.attrs["HostConfig"]["PortBindings"]
    assert not hub.attrs["HostConfig"]["PortBindings"]
    # The front: nobody, read-only, no capabilities, on the stack network only.
    assert front.attrs["Config"]["User"] == "65534:65534"
    assert front.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert front.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert list(front.attrs["NetworkSettings"]["Networks"]) == [names.network]

    # The standby: the proxy's twin (same token, same routing table on a shared volume),
    # no published port either.
    standby = client.containers.get(names.proxy_standby_container)
    assert standby.labels["io.hubd.role"] == ROLE_PROXY_STANDBY
    assert not standby.attrs["HostConfig"]["PortBindings"]
    for container in (proxy, standby):
        mounts = {m["Name"]: m["Destination"] for m in container.attrs["Mounts"]}
        assert mounts == {names.proxy_routes_volume: "/var/lib/hubd-proxy"}, container.name

    token = (read_file(proxy, "/etc/hubd-proxy/token") or "").strip()
    assert len(token) == 64
    assert (read_file(hub, PROXY_TOKEN_FILE) or "").strip() == token
    assert (read_file(standby, "/etc/hubd-proxy/token") or "").strip() == token
    for container in (proxy, standby, hub, front):
        assert token not in json.dumps(container.attrs), container.name
        assert token not in bytes(container.logs()).decode(errors="replace"), container.name
    mode = hub.exec_run(["stat", "-c", "%a", PROXY_TOKEN_FILE]).output.decode().strip()
    assert mode == "600"
    # The proxy's API answers only with the token.
    api = f"http://{names.proxy_api_alias}:8001/api/routes"
    probe = "import sys, urllib.request as u\n" + (
        f"r = u.Request({api!r}, headers={{'Authorization': 'token ' + sys.argv[1]}})\n"
        "print(u.urlopen(r).status)"
    )
    assert hub.exec_run(["python3", "-c", probe, token]).output.decode().strip() == "200"
    assert hub.exec_run(["python3", "-c", probe, "wrong"]).exit_code != 0


def test_hub_recreation_never_touches_the_proxy(stack_env: StackEnv) -> None:
    stack_env.hubd("up")
    proxy = stack_env.client.containers.get(stack_env.names.proxy_container)
    started = proxy.attrs["State"]["StartedAt"]
    stack_env.write_config(cull_idle_timeout=600)  # a hub config change: the hub is recreated
    changed = stack_env.hubd("up")
    assert f"recreated container {stack_env.names.hub_container}" in changed.stderr
    proxy.reload()
    assert proxy.attrs["State"]["StartedAt"] == started
    # A port change is the proxy's business only.
    hub_id = stack_env.client.containers.get(stack_env.names.hub_container).id
    from tests.integration.docker_env import free_port

    stack_env.write_config(port=free_port())
    stack_env.hubd("up")
    assert stack_env.client.containers.get(stack_env.names.hub_container).id == hub_id
    assert requests.get(f"{stack_env.base_url}/hub/health", timeout=5).status_code == 200


def test_a_single_container_stack_moves_to_the_proxy_layout_keeping_people_at_work(
    stack_env: StackEnv,
) -> None:
    stack_env.hubd("up")
    stack_env.hubd("user", "add", "--password-stdin", "rosa", input=PASSWORD + "\n")
    person = Person(stack_env.base_url, "rosa", PASSWORD)
    server = stack_env.client.containers.get(f"{stack_env.names.user_container_prefix}-rosa")
    person.close()
    make_single_container_stack(stack_env)
    old_hub = stack_env.client.containers.get(stack_env.names.hub_container)
    assert old_hub.attrs["HostConfig"]["PortBindings"]
    assert person.file_intact()  # the old shape works, with rosa's server in it

    moved = stack_env.hubd("up")
    assert "moved the proxy out of" in moved.stderr, moved.stderr
    hub = stack_env.client.containers.get(stack_env.names.hub_container)
    assert hub.id != old_hub.id and not hub.attrs["HostConfig"]["PortBindings"]
    assert stack_env.client.containers.get(stack_env.names.proxy_container).status == "running"
    server.reload()
    assert server.status == "running"  # rosa's server was kept, with her kernel
    users = json.loads(stack_env.hubd("user", "list", "--json").stdout)
    assert [u["name"] for u in users] == ["rosa"]
    assert person.file_intact()
    socket = KernelSocket(person.session, stack_env.base_url, "rosa", person.kernel_id)
    try:
        assert socket.execute("print(x)").strip() == "42"
    finally:
        socket.close()
    # Once moved, nothing more to do.
    assert "moved the proxy" not in stack_env.hubd("up").stderr


def test_a_stack_whose_proxy_published_the_port_moves_to_the_front(stack_env: StackEnv) -> None:
    """hubd before the front: the proxy published the port. `up` gives the port to the front
    (a few seconds' gap, this once) and people's servers and kernels stay."""
    stack_env.hubd("up")
    stack_env.hubd("user", "add", "--password-stdin", "rosa", input=PASSWORD + "\n")
    person = Person(stack_env.base_url, "rosa", PASSWORD)
    person.close()
    make_publishing_proxy_stack(stack_env)
    names = stack_env.names
    assert stack_env.client.containers.get(names.proxy_container).attrs["HostConfig"][
        "PortBindings"
    ]
    assert person.file_intact()  # the old shape works

    moved = stack_env.hubd("up")
    assert "moved the port from" in moved.stderr, moved.stderr
    front = stack_env.client.containers.get(names.front_container)
    proxy = stack_env.client.containers.get(names.proxy_container)
    assert front.attrs["HostConfig"]["PortBindings"]
    assert not proxy.attrs["HostConfig"]["PortBindings"]
    assert person.file_intact()
    socket = KernelSocket(person.session, stack_env.base_url, "rosa", person.kernel_id)
    try:
        assert socket.execute("print(x)").strip() == "42"
    finally:
        socket.close()
    assert "moved the port" not in stack_env.hubd("up").stderr
