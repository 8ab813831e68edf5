"""A hub stack of the single-container shape: what an earlier hubd made, and what JupyterHub's
Docker tutorial runs (the proxy a child of the hub, Docker's restart policy as supervisor).
Built from a stack `hubd up` made, with the same images."""

from __future__ import annotations

import contextlib
import json

import docker

from hubd.stack.containers import read_file, tar_files
from hubd.stack.settings import PROXY_TOKEN_FILE, SETTINGS_DIR, hub_settings
from hubd.stack.user_networks import join_user_networks
from hubd.timing import Timing
from tests.integration.docker_env import StackEnv


def remove_way_in(env: StackEnv) -> None:
    """No front nor proxy container: the hub's container is to publish the port itself."""
    for name in (env.names.front_container, env.names.proxy_container):
        with contextlib.suppress(docker.errors.NotFound):
            container = env.client.containers.get(name)
            container.remove(force=True)
            container.wait(condition="removed")


def make_single_container_stack(env: StackEnv, restart_policy: str = "no") -> None:
    """Turn a stack into the shape an earlier hubd made: no proxy container; the hub starts
    configurable-http-proxy itself and its container publishes the port. With
    `restart_policy="always"` and no hubd, it is the tutorial's layout."""
    stack = env.stack()
    client, names = env.client, env.names
    hub = client.containers.get(names.hub_container)
    image = hub.attrs["Config"]["Image"]
    token = (read_file(hub, PROXY_TOKEN_FILE) or "").strip()
    remove_way_in(env)
    stack.hub.stop()
    hub.remove()
    create, _ = stack.hub.spec(image)
    del create["tmpfs"]
    create["ports"] = {"8000/tcp": ("127.0.0.1", env.config.port)}
    create["labels"] = names.labels("hub", **{"io.hubd.spec": "from-an-earlier-hubd"})
    create["restart_policy"] = {"Name": restart_policy}
    create["command"] = [
        "jupyterhub",
        "-f",
        "/usr/local/lib/hubd/jupyterhub_config.py",
        "--ConfigurableHTTPProxy.should_start=True",
        "--ConfigurableHTTPProxy.api_url=http://127.0.0.1:8001",
    ]
    old = client.containers.create(**create)
    join_user_networks(client, names, old)  # people's servers sit on networks of their own
    values = hub_settings(env.config, names, Timing())
    # No proxy container to join people's networks: the hub alone (its CHP child) reaches them.
    values["user_network_members"] = [names.hub_container]
    settings = json.dumps(values)
    old.put_archive("/", tar_files({f"{SETTINGS_DIR}/settings.json": settings}))
    old.put_archive("/", tar_files({PROXY_TOKEN_FILE: token}, mode=0o600))
    old.start()
    stack.hub.wait_healthy(300)  # a loaded machine: the hub alone may take minutes


def make_publishing_proxy_stack(env: StackEnv) -> None:
    """Turn a stack into the shape hubd made before the front (issue 26): the proxy container
    publishes the port itself, its API on the alias the hub knows, its routes in memory."""
    from hubd.stack.naming import LABEL_SPEC
    from hubd.stack.proxy import PROXY_TOKEN_IN_PROXY, PROXY_USER_ID

    stack = env.stack()
    client, names = env.client, env.names
    proxy = client.containers.get(names.proxy_container)
    token = (read_file(proxy, PROXY_TOKEN_IN_PROXY) or "").strip()
    for name in (names.front_container, names.proxy_container):
        container = client.containers.get(name)
        container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            container.wait(condition="removed")
    create, _ = stack.proxy.spec(names.proxy_api_alias)
    create["command"] = [a for a in create["command"] if not a.startswith("--storage-backend")]
    create["ports"] = {"8000/tcp": ("127.0.0.1", env.config.port)}
    create["labels"] = {**create["labels"], LABEL_SPEC: "from-an-earlier-hubd"}
    old = client.containers.create(**create)
    join_user_networks(client, names, old)
    old.put_archive("/", tar_files({PROXY_TOKEN_IN_PROXY: token}, mode=0o400, owner=PROXY_USER_ID))
    old.start()
    stack.proxy.wait_healthy()
    assert stack.refresh_routes()
