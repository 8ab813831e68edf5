"""The settings file hubd hands to its hub container (read by hub_image/jupyterhub_config.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubd.config import MIN_PASSWORD_CHARS, Config, image_node_labels
from hubd.stack.capacity import (
    active_server_limit,
    concurrent_spawn_limit,
    memory_for_servers,
    promised_memory_bytes,
)
from hubd.stack.hardening import (
    USER_CAP_DROP,
    USER_PIDS_LIMIT,
    default_mem_limit,
    user_host_config,
)
from hubd.stack.naming import (
    LABEL_USER,
    ROLE_USER_DATA,
    ROLE_USER_NETWORK,
    ROLE_USER_SERVER,
    StackNames,
)
from hubd.stack.swarm.homes import HOME_LABEL_PREFIX, NODE_LABEL_PREFIX
from hubd.timing import Timing

HUB_DATA_DIR = "/srv/jupyterhub/data"
SETTINGS_DIR = "/srv/hubd"
SETTINGS_FILE = f"{SETTINGS_DIR}/settings.json"
# The hub's working directory: a fresh tmpfs at every start (pid files and the like).
HUB_WORK_DIR = "/srv/jupyterhub"
# The token the hub and the proxy share (see stack/proxy.py), beside the settings.
PROXY_TOKEN_FILE = f"{SETTINGS_DIR}/proxy-token"
# The hub's own port on the stack network, and the proxy's API port there.
HUB_PORT = 8081
PROXY_API_PORT = 8001
SHARED_FOLDER_TARGET = "/home/jovyan/shared"
ALLOWED_FAILED_LOGINS = 5
# The Swarm generic resource a GPU image reserves (what NVIDIA's docs have nodes advertise).
GPU_RESOURCE_KIND = "NVIDIA-GPU"


def hub_settings(
    config: Config,
    names: StackNames,
    timing: Timing,
    user_images: Mapping[str, str] | None = None,
    engine_memory_bytes: int | None = None,
    swarm_node_id: str | None = None,
    engine_cpus: int | None = None,
    user_network_block: str | None = None,
) -> dict[str, Any]:
    """The hub's settings. `user_images` maps the config's image names to the pinned image
    ids, so DockerSpawner starts exactly the pinned version even after a tag moved.
    `engine_memory_bytes` (the engine's `MemTotal`) sizes the default memory limit.
    `swarm_node_id` (the engine's own node, when it is a Swarm manager) turns people's
    servers into Swarm services (hub_image/hubd_swarm.py). `engine_cpus` sizes the spawn
    limits (capacity.py); `user_network_block` is where people's networks take their /29s
    (subnets.py; None: from the engine's default pools, as before)."""
    pinned = dict(user_images or {})
    allowed: list[str] | dict[str, str] = list(config.allowed_images)
    if pinned and allowed:
        # DockerSpawner shows the keys of a dict to people and starts the value.
        allowed = {ref: pinned.get(ref, ref) for ref in config.allowed_images}
    mem_limit = config.mem_limit or (
        default_mem_limit(engine_memory_bytes) if engine_memory_bytes else None
    )
    promised = promised_memory_bytes(config.mem_limit, mem_limit)
    cull_every = max(10, min(300, config.cull_idle_timeout // 2)) if config.cull_idle_timeout else 0
    return {
        "data_dir": HUB_DATA_DIR,
        "hub_container": names.hub_container,
        "hub_port": HUB_PORT,
        "proxy_api_url": f"http://{names.proxy_api_alias}:{PROXY_API_PORT}",
        "proxy_token_file": PROXY_TOKEN_FILE,
        "network": names.network,
        "user_image": pinned.get(config.user_image, config.user_image),
        "allowed_images": allowed,
        "user_container_prefix": names.user_container_prefix,
        "user_container_labels": names.labels(ROLE_USER_SERVER),
        "user_volume_template": names.user_volume_template,
        "user_volume_labels": names.labels(ROLE_USER_DATA),
        "user_label": LABEL_USER,
        "user_network_prefix": names.user_network_prefix,
        "user_network_labels": names.labels(ROLE_USER_NETWORK),
        "user_network_members": names.user_network_members,
        "work_dir": config.user_work_dir,
        "shared_folder": config.shared_folder,
        "shared_folder_target": SHARED_FOLDER_TARGET,
        "shared_folder_readonly": config.shared_folder_readonly,
        "mem_limit": mem_limit,
        # What the servers' promises may add up to, and each one's (capacity.py); the hub
        # refuses a start past it (hub_image/hubd_spawner.py).
        "memory_for_servers": memory_for_servers(engine_memory_bytes) if engine_memory_bytes else 0,
        "memory_promised_per_server": promised,
        "concurrent_spawn_limit": concurrent_spawn_limit(
            config.concurrent_spawn_limit, engine_cpus or 1
        ),
        "active_server_limit": active_server_limit(
            config.active_server_limit, engine_memory_bytes or 0, promised
        ),
        "user_network_block": user_network_block,
        # Servers from these images get the machine's GPUs (device_requests), off a Swarm.
        "gpu_images": gpu_image_refs(config, pinned),
        "user_host_config": user_host_config(),
        "cpu_limit": config.cpu_limit,
        "cull_idle_timeout": config.cull_idle_timeout,
        "cull_every": cull_every,
        "min_password_length": MIN_PASSWORD_CHARS,
        "allowed_failed_logins": ALLOWED_FAILED_LOGINS,
        "lockout_seconds": timing.hub_login_lockout_s,
        "spawn_timeout": timing.hub_spawn_timeout_s,
        "swarm": swarm_settings(config, names, timing, pinned, swarm_node_id)
        if swarm_node_id
        else None,
    }


def gpu_image_refs(config: Config, pinned: Mapping[str, str]) -> list[str]:
    """The GPU images by name and by pinned id: the spawner sees the pinned id when there is
    one, the name otherwise."""
    return sorted({ref for image in config.gpu_images for ref in (image, pinned.get(image, image))})


def swarm_settings(
    config: Config,
    names: StackNames,
    timing: Timing,
    pinned: Mapping[str, str],
    manager_node_id: str,
) -> dict[str, Any]:
    """What hub_image/hubd_swarm.py needs: where people live, and what each image needs."""

    def both(ref: str) -> list[str]:
        # The spawner sees the pinned id when there is one, the name otherwise.
        return list(dict.fromkeys([ref, pinned.get(ref, ref)]))

    image_labels = {
        key: NODE_LABEL_PREFIX + label
        for image, label in image_node_labels(config.image_nodes).items()
        for key in both(image)
    }
    return {
        "manager_node_id": manager_node_id,
        "home_label_prefix": f"{HOME_LABEL_PREFIX}{names.stack}.",
        "network_prefix": names.user_swarm_network_prefix,
        "image_node_labels": image_labels,
        "gpu_images": gpu_image_refs(config, pinned),
        "gpu_resource_kind": GPU_RESOURCE_KIND,
        "pids_limit": USER_PIDS_LIMIT,
        "cap_drop": list(USER_CAP_DROP),
        "poll_s": timing.swarm_task_poll_s,
    }
