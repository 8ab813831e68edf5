"""The docker gate's container: the only holder of the engine's socket in a stack.

The gate (hub_image/docker_gate.py, which says what it lets through) runs in its own container
`<stack>-docker-gate` from the hub image: no network at all, no capabilities, a read-only root
file system. It serves a filtered Docker socket in the volume `<stack>-docker-gate`, which the
hub mounts and uses as DOCKER_HOST. It is a container rather than a thread of `hubd run` so
that spawning keeps working while hubd restarts, stops or upgrades; Docker restarts it with
the engine (`unless-stopped`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from docker.errors import NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import StackError
from hubd.stack.hardening import USER_CAP_DROP, USER_PIDS_LIMIT, USER_SECURITY_OPT
from hubd.stack.naming import (
    LABEL_ROLE,
    LABEL_SPEC,
    LABEL_STACK,
    ROLE_USER_SERVER,
    StackNames,
)
from hubd.stack.settings import gpu_image_refs
from hubd.timing import Timing

ROLE_DOCKER_GATE = "docker-gate"
ROLE_DOCKER_GATE_SOCKET = "docker-gate-socket"
GATE_DIR = "/run/hubd-gate"
GATE_SOCKET = f"{GATE_DIR}/docker.sock"
GATE_PROGRAM = "/usr/local/lib/hubd/docker_gate.py"
ENGINE_SOCKET_IN_GATE = "/var/run/docker.sock"
READY_LINE = b"hubd's docker gate: listening"


def gate_container_name(names: StackNames) -> str:
    return f"{names.stack}-docker-gate"


def gate_volume_name(names: StackNames) -> str:
    return f"{names.stack}-docker-gate"


def gate_policy(
    config: Config,
    names: StackNames,
    user_images: Mapping[str, str] | None = None,
    swarm: bool = False,
    user_network_block: str | None = None,
) -> dict[str, Any]:
    """What the hub may do through the gate (read by hub_image/docker_gate.py's Policy).

    `user_images` maps configured image names to the pinned ids the hub starts them by;
    `swarm` (the engine is a Swarm manager) lets people's servers be Swarm services;
    `user_network_block` is where people's networks take their /29 (stack/subnets.py)."""
    return {
        "user_network_block": user_network_block,
        "gpu_images": gpu_image_refs(config, user_images or {}),
        "swarm": swarm,
        "swarm_network_prefix": names.user_swarm_network_prefix,
        "stack_label": LABEL_STACK,
        "stack": names.stack,
        "role_label": LABEL_ROLE,
        "user_role": ROLE_USER_SERVER,
        "container_prefix": names.user_container_prefix,
        "volume_prefix": names.user_volume_template.split("{", 1)[0],
        "volume_suffix": names.user_volume_template.split("}", 1)[1],
        "user_network_prefix": names.user_network_prefix,
        "network_members": names.user_network_members,
        "images": sorted(
            {config.user_image, *config.allowed_images, *(user_images or {}).values()}
        ),
        "shared_folder": config.shared_folder,
        "shared_folder_readonly": config.shared_folder_readonly,
        "pids_limit": USER_PIDS_LIMIT,
        "security_opt": USER_SECURITY_OPT,
        "cap_drop": USER_CAP_DROP,
    }


def hub_gate_mount(names: StackNames) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The hub container's volume and environment to reach the engine through the gate."""
    return (
        {gate_volume_name(names): {"bind": GATE_DIR, "mode": "rw"}},
        {"DOCKER_HOST": f"unix://{GATE_SOCKET}"},
    )


def gate_spec(
    config: Config,
    names: StackNames,
    image: str,
    engine_socket: str,
    timing: Timing,
    user_images: Mapping[str, str] | None = None,
    swarm: bool = False,
    user_network_block: str | None = None,
) -> dict[str, Any]:
    """The gate container's create arguments, labelled with a hash of themselves."""
    policy = json.dumps(
        gate_policy(config, names, user_images, swarm, user_network_block), sort_keys=True
    )
    create: dict[str, Any] = {
        "image": image,
        "name": gate_container_name(names),
        "command": ["python3", GATE_PROGRAM],
        "environment": {
            "HUBD_GATE_POLICY": policy,
            "HUBD_GATE_ENGINE_TIMEOUT_S": str(timing.gate_engine_timeout_s),
            "PYTHONUNBUFFERED": "1",
        },
        "volumes": {
            engine_socket: {"bind": ENGINE_SOCKET_IN_GATE, "mode": "rw"},
            gate_volume_name(names): {"bind": GATE_DIR, "mode": "rw"},
        },
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "restart_policy": {"Name": "unless-stopped"},
        "init": True,
        "detach": True,
    }
    digest = hashlib.sha256(json.dumps(create, sort_keys=True).encode()).hexdigest()[:16]
    create["labels"] = names.labels(ROLE_DOCKER_GATE, **{LABEL_SPEC: digest})
    return create


def ensure_gate(
    client: Any,
    config: Config,
    names: StackNames,
    image: str,
    engine_socket: str,
    timing: Timing,
    user_images: Mapping[str, str] | None = None,
    swarm: bool = False,
    user_network_block: str | None = None,
) -> tuple[Container, str]:
    """Make the gate container match its spec and run. Returns (container, what was done)."""
    create = gate_spec(
        config, names, image, engine_socket, timing, user_images, swarm, user_network_block
    )
    try:
        client.volumes.get(gate_volume_name(names))
    except NotFound:
        client.volumes.create(gate_volume_name(names), labels=names.labels(ROLE_DOCKER_GATE_SOCKET))
    action = "unchanged"
    try:
        container = client.containers.get(create["name"])
    except NotFound:
        container = None
    if container is not None and container.labels.get(LABEL_STACK) != names.stack:
        raise StackError(
            f"a Docker container named {create['name']!r} exists that hubd did not create; "
            "hubd will not touch it: rename it, or set another `stack_name` in the config"
        )
    if container is not None and container.labels.get(LABEL_SPEC) != create["labels"][LABEL_SPEC]:
        container.remove(force=True)
        container, action = None, "recreated"
    if container is None:
        container = client.containers.create(**create)
        action = "created" if action == "unchanged" else action
    if container.status == "paused":
        container.unpause()
    elif container.status != "running":
        container.start()
        action = "started" if action == "unchanged" else action
    _wait_listening(container, timing)
    return container, action


def start_gate(client: Any, names: StackNames, timing: Timing) -> None:
    """Start the gate if it exists and is not running (the hub needs it to spawn)."""
    try:
        container = client.containers.get(gate_container_name(names))
    except NotFound:
        return
    if container.status == "paused":
        container.unpause()
    elif container.status != "running":
        container.start()
        _wait_listening(container, timing)


def _wait_listening(container: Container, timing: Timing) -> None:
    """Wait for the gate's "listening" line, so the hub never starts before its socket."""
    deadline = time.monotonic() + timing.gate_ready_deadline_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("running", "created", "restarting"):
            break
        if READY_LINE in bytes(container.logs(tail=20)):
            return
        time.sleep(timing.gate_ready_poll_s)
    raise StackError(
        f"hubd's docker gate {container.name} did not start ({container.status}); its last "
        "lines:\n" + bytes(container.logs(tail=15)).decode(errors="replace")
    )
