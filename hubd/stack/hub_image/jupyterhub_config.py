# hubd's JupyterHub configuration. It ships inside hubd's hub image and reads every value that
# can change from the settings file hubd writes into the container (HUBD_SETTINGS), so that
# the config itself is fixed code and the settings are plain data.
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - JupyterHub provides it

settings = json.loads(Path(os.environ.get("HUBD_SETTINGS", "/srv/hubd/settings.json")).read_text())
data_dir = Path(settings["data_dir"])
data_dir.mkdir(parents=True, exist_ok=True)
data_dir.chmod(0o700)


def _service_token(path: Path) -> str:
    """hubd's own API token: made once, kept on the data volume, readable by root only."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


# -- the hub itself: state on the data volume, listening for the proxy and for user servers
c.JupyterHub.bind_url = "http://:8000"  # the proxy's public side
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.hub_connect_ip = settings["hub_container"]

# -- the proxy runs in its own container (hubd starts and supervises it), so that people's
# requests to their servers go on while the hub restarts. The token is a file, never an
# environment variable: `docker inspect` shows those.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = Path(settings["proxy_token_file"]).read_text().strip()
c.JupyterHub.db_url = f"sqlite:///{data_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(data_dir / "jupyterhub_cookie_secret")
# A restarted hub (crash, upgrade, hubd restart) finds users' servers still running and keeps
# them: it must not stop them on its way down.
c.JupyterHub.cleanup_servers = False

# -- accounts: only the owner creates them (hubd's authenticator, see hubd_hub.py)
c.JupyterHub.authenticator_class = "hubd_hub.HubdAuthenticator"
c.NativeAuthenticator.minimum_password_length = settings["min_password_length"]
c.NativeAuthenticator.check_common_password = True
c.NativeAuthenticator.allowed_failed_logins = settings["allowed_failed_logins"]
c.NativeAuthenticator.seconds_before_next_try = settings["lockout_seconds"]

# -- one JupyterLab container per user, on hubd's network, each with their own volume
# hubd's DockerSpawner (hubd_spawner.py): people's networks from hubd's address block, the
# machine's memory kept, GPUs for the GPU images, a sentence for people when a start fails.
c.JupyterHub.spawner_class = "hubd_spawner.HubdDockerSpawner"
c.HubdDockerSpawner.hubd = settings
c.DockerSpawner.network_name = settings["network"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = settings["user_container_prefix"]
c.DockerSpawner.image = settings["user_image"]
if settings["allowed_images"]:
    c.DockerSpawner.allowed_images = settings["allowed_images"]
c.DockerSpawner.remove = True
c.DockerSpawner.notebook_dir = settings["work_dir"]
c.DockerSpawner.volumes = {settings["user_volume_template"]: settings["work_dir"]}
if settings["shared_folder"]:
    shared_mount = {settings["shared_folder"]: settings["shared_folder_target"]}
    if settings["shared_folder_readonly"]:
        c.DockerSpawner.read_only_volumes = shared_mount
    else:
        c.DockerSpawner.volumes.update(shared_mount)
c.DockerSpawner.extra_create_kwargs = {"labels": settings["user_container_labels"]}
# PID limit, no-new-privileges, no capabilities (hubd/stack/hardening.py says why).
c.DockerSpawner.extra_host_config = settings["user_host_config"]
if settings["mem_limit"]:
    c.DockerSpawner.mem_limit = settings["mem_limit"]
if settings["cpu_limit"]:
    c.DockerSpawner.cpu_limit = settings["cpu_limit"]
# -- on a Swarm of the lab's machines (after `hubd node add`): people's servers are Swarm
# services, each on the node that holds the person's volume (hubd_swarm.py).
swarm = settings.get("swarm")
if swarm:
    c.JupyterHub.spawner_class = "hubd_swarm.HubdSwarmSpawner"
    c.HubdSwarmSpawner.swarm = swarm
    c.HubdSwarmSpawner.volume_labels = settings["user_volume_labels"]
    c.HubdSwarmSpawner.container_labels = settings["user_container_labels"]
    c.HubdSwarmSpawner.user_label = settings["user_label"]
c.Spawner.default_url = "/lab"
# Many at once on a small machine (hubd/stack/capacity.py): beyond these, people wait and the
# error page (templates/error.html) tells them so and tries again by itself.
c.JupyterHub.concurrent_spawn_limit = settings.get("concurrent_spawn_limit") or 0
c.JupyterHub.active_server_limit = settings.get("active_server_limit") or 0
c.JupyterHub.template_paths = ["/usr/local/lib/hubd/templates"]
c.Spawner.start_timeout = settings["spawn_timeout"]
c.Spawner.http_timeout = settings["spawn_timeout"]


async def _create_labelled_volume(spawner: Any) -> None:
    """Create the user's volume with hubd's labels, so hubd can find (and never lose) it."""
    name = settings["user_volume_template"].format(username=spawner.escaped_name)
    try:
        await spawner.docker("inspect_volume", name)
    except Exception:
        labels = {**settings["user_volume_labels"], settings["user_label"]: spawner.user.name}
        await spawner.docker("create_volume", name=name, labels=labels)


async def _join_own_network(spawner: Any) -> None:
    """On a Swarm: put the person's server on a network of its own that only the hub (and
    whatever else must reach people's servers) joins: one person's container cannot reach
    another's. It is an attachable overlay, which the hub and the proxy (plain containers on
    the manager) join and the person's service, on whichever node, is attached to. (On one
    machine hubd_spawner.py does this, with a subnet from hubd's block.)"""
    name = swarm["network_prefix"] + spawner.escaped_name
    kind = {"driver": "overlay", "attachable": True}
    try:
        network = await spawner.docker("inspect_network", name)
    except Exception:
        labels = {**settings["user_network_labels"], settings["user_label"]: spawner.user.name}
        await spawner.docker("create_network", name, labels=labels, **kind)
        network = await spawner.docker("inspect_network", name)
    from hubd_spawner import join_members  # in the hub image only (it needs dockerspawner)

    await join_members(spawner, network, settings["user_network_members"])
    spawner.network_name = name


async def _prepare(spawner: Any) -> None:
    if not swarm:
        # On a Swarm the volume is made by the engine of the node the server runs on (a
        # labelled `type=volume` mount, hubd_swarm.py): this engine's would be the wrong one.
        await _create_labelled_volume(spawner)
    else:
        await _join_own_network(spawner)


async def _prepare_spawn(spawner: Any) -> None:
    # A failure here reaches the person as one sentence, the engine's text the log.
    from hubd_spawner import friendly  # in the hub image only (it needs dockerspawner)

    await friendly(spawner, _prepare(spawner))


c.Spawner.pre_spawn_hook = _prepare_spawn

# -- services: the idle culler and hubd itself, each with only the scopes it needs
services: list[dict[str, Any]] = [
    {"name": "hubd", "api_token": _service_token(data_dir / "hubd-service-token")}
]
roles = [
    {
        "name": "hubd",
        "description": "hubd manages accounts and servers for the owner",
        # proxy: hubd has the hub re-add every route right after a proxy restart, and
        # `hubd upgrade` checks that the proxy still routes to people's servers.
        "scopes": [
            "custom:hubd-accounts",
            "admin:users",
            "admin:servers",
            "list:users",
            "read:users",
            "proxy",
        ],
        "services": ["hubd"],
    }
]
if settings["cull_idle_timeout"] > 0:
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={settings['cull_idle_timeout']}",
                f"--cull-every={settings['cull_every']}",
            ],
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "description": "stop servers nobody has used for a while",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
# The account API (hubd_hub.py) asks for this scope, which only hubd's role holds: admins (and
# tokens they make) hold `admin:users`, and must not create admins or reset the owner's password.
c.JupyterHub.custom_scopes = {
    "custom:hubd-accounts": {"description": "create accounts, set passwords, lift lockouts"}
}
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles
