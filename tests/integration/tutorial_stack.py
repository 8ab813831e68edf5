"""Hub stacks of the single-container shape, built from a stack `hubd up` made, with the same
images:
- `make_tutorial_stack`: JupyterHub's Docker tutorial (jupyterhub-deploy-docker), the baseline
  of the benchmarks: one hub container that starts configurable-http-proxy itself, publishes
  the port, holds the engine's socket and puts every server on one shared network, Docker's
  `restart: always` as its only supervisor;
- `make_single_container_stack`: what an earlier hubd made (the proxy a child of the hub, the
  port on the hub's container), which `hubd up` moves to today's layout.
"""

from __future__ import annotations

import contextlib
import json

import docker

from hubd.stack.containers import TarEntry, read_file, tar_of
from hubd.stack.settings import (
    HUB_DATA_DIR,
    PROXY_TOKEN_FILE,
    SETTINGS_DIR,
    SETTINGS_FILE,
    hub_settings,
)
from hubd.stack.user_networks import join_user_networks
from hubd.timing import Timing
from tests.integration.docker_env import StackEnv

# The hub starts configurable-http-proxy as its child (JupyterHub's default), its API on the
# container's loopback.
_HUB_STARTS_CHP = (
    "--ConfigurableHTTPProxy.should_start=True",
    "--ConfigurableHTTPProxy.api_url=http://127.0.0.1:8001",
)
_HUBD_CONFIG = "/usr/local/lib/hubd/jupyterhub_config.py"
# The tutorial's hub: hubd's configuration with the tutorial's spawner choices put back
# (DockerSpawner itself on the engine's socket, every server on the one network, no limits).
TUTORIAL_CONFIG = """
exec(compile(open("/usr/local/lib/hubd/jupyterhub_config.py").read(), "hubd", "exec"))
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.network_name = settings["network"]
c.Spawner.pre_spawn_hook = _create_labelled_volume
c.JupyterHub.concurrent_spawn_limit = 100
c.JupyterHub.active_server_limit = 0
"""


def remove_way_in(env: StackEnv) -> None:
    """No front nor proxy (nor its standby): the hub's container is to publish the port
    itself."""
    names = env.names
    for name in (names.front_container, names.proxy_container, names.proxy_standby_container):
        with contextlib.suppress(docker.errors.NotFound):
            container = env.client.containers.get(name)
            container.remove(force=True)
            container.wait(condition="removed")


def make_tutorial_stack(env: StackEnv) -> None:
    """Turn a hubd stack into the tutorial's layout: one hub container that starts the proxy
    itself, publishes the port, holds the engine's socket and puts every server on the
    stack's one network; `restart: always`. No hubd runs for it afterwards."""
    stack = env.stack()
    client, names = env.client, env.names
    hub = client.containers.get(names.hub_container)
    image = hub.attrs["Config"]["Image"]
    token = (read_file(hub, PROXY_TOKEN_FILE) or "").strip()
    remove_way_in(env)  # the front held the port: the tutorial's hub publishes it
    stack.hub.stop()
    hub.remove()
    create, _ = stack.hub.spec(image)
    del create["tmpfs"]
    create["volumes"] = {
        names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"},
        "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
    }
    create["environment"] = {"HUBD_SETTINGS": SETTINGS_FILE}
    create["ports"] = {"8000/tcp": ("127.0.0.1", env.config.port)}
    create["labels"] = names.labels("hub", **{"io.hubd.spec": "the-tutorials-layout"})
    create["restart_policy"] = {"Name": "always"}
    create["command"] = ["jupyterhub", "-f", f"{SETTINGS_DIR}/tutorial_config.py", *_HUB_STARTS_CHP]
    tutorial = client.containers.create(**create)
    settings = json.dumps(hub_settings(env.config, names, Timing()))
    tutorial.put_archive(
        "/",
        tar_of(
            [
                TarEntry(SETTINGS_FILE, settings),
                TarEntry(f"{SETTINGS_DIR}/tutorial_config.py", TUTORIAL_CONFIG),
                TarEntry(PROXY_TOKEN_FILE, token, mode=0o600),
            ]
        ),
    )
    tutorial.start()
    stack.hub.wait_healthy(300)  # a loaded machine: the hub alone may take minutes


def make_single_container_stack(env: StackEnv, restart_policy: str = "no") -> None:
    """Turn a stack into the shape an earlier hubd made: no proxy container; the hub starts
    configurable-http-proxy itself and its container publishes the port; people's servers
    still on networks of their own, through the docker gate."""
    stack = env.stack()
    client, names = env.client, env.names
    hub = client.containers.get(names.hub_container)
    image = hub.attrs["Config"]["Image"]
    token = (read_file(hub, PROXY_TOKEN_FILE) or "").strip()
    # The settings hubd wrote for this stack (fresh ones would lack what it resolved on the
    # engine, e.g. the block people's /29s come from, and the gate would refuse every new
    # person's network: their server would never start).
    values = json.loads(read_file(hub, SETTINGS_FILE) or "null")
    assert isinstance(values, dict), f"no {SETTINGS_FILE} in {hub.name}"
    remove_way_in(env)
    stack.hub.stop()
    hub.remove()
    create, _ = stack.hub.spec(image)
    del create["tmpfs"]
    create["ports"] = {"8000/tcp": ("127.0.0.1", env.config.port)}
    create["labels"] = names.labels("hub", **{"io.hubd.spec": "from-an-earlier-hubd"})
    create["restart_policy"] = {"Name": restart_policy}
    create["command"] = ["jupyterhub", "-f", _HUBD_CONFIG, *_HUB_STARTS_CHP]
    old = client.containers.create(**create)
    join_user_networks(client, names, old)  # people's servers sit on networks of their own
    # No proxy container to join people's networks: the hub alone (its CHP child) reaches them.
    values["user_network_members"] = [names.hub_container]
    settings = json.dumps(values)
    files = [TarEntry(SETTINGS_FILE, settings), TarEntry(PROXY_TOKEN_FILE, token, mode=0o600)]
    old.put_archive("/", tar_of(files))
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
    token_file = TarEntry(PROXY_TOKEN_IN_PROXY, token, mode=0o400, owner=PROXY_USER_ID)
    old.put_archive("/", tar_of([token_file]))
    old.start()
    stack.proxy.wait_healthy()
    assert stack.refresh_routes()
