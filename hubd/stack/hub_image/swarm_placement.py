"""Where a person's server runs on a Swarm: pure rules, standard library only.

Runs inside the hub (hubd_swarm.py asks the engine, these decide); hubd imports this same
file for its readers of a node's JSON (`docker node inspect`): its name, state, availability,
labels and generic resources are read here and nowhere else. Volumes are node-local, so a
person's server runs on the one node that holds their files (their home, a node label hubd
sets: hubd/stack/swarm/homes.py); everything here follows from that. Messages are written
for the person on the spawn page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Swarm task states after which the task will never run (docker/swarmkit api/types.proto).
ENDED_TASK_STATES = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


class PlacementRefused(Exception):
    """The server cannot start now; the message is for the person who asked."""


# ---------------------------------------------------------------- a node's JSON, read once


def node_name(node: Mapping[str, Any]) -> str:
    """Its hostname, else the start of its id."""
    return str((node.get("Description") or {}).get("Hostname") or (node.get("ID") or "")[:12])


def node_labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict((node.get("Spec") or {}).get("Labels") or {})


def node_state(node: Mapping[str, Any]) -> str:
    """Swarm's word for the node: ready, down, unknown, disconnected."""
    return str((node.get("Status") or {}).get("State") or "unknown")


def node_ready(node: Mapping[str, Any]) -> bool:
    """Whether the node's engine answers the Swarm."""
    return node_state(node) == "ready"


def node_active(node: Mapping[str, Any]) -> bool:
    """Whether the node takes tasks (not paused, not drained)."""
    return ((node.get("Spec") or {}).get("Availability") or "active") == "active"


def node_resources(node: Mapping[str, Any]) -> dict[str, int]:
    """Swarm's generic resources the node's engine advertises (`node-generic-resources` in
    its daemon.json), kind -> count: discrete ones carry a count, named ones (one GPU by UUID
    each) count one per entry. A kind listed with a count of 0 is still listed."""
    raw = ((node.get("Description") or {}).get("Resources") or {}).get("GenericResources")
    counts: dict[str, int] = {}
    for item in raw or []:
        if "DiscreteResourceSpec" in item:
            spec = item["DiscreteResourceSpec"] or {}
            value = int(spec.get("Value") or 0)
        else:
            spec = item.get("NamedResourceSpec") or {}
            value = 1
        kind = str(spec.get("Kind") or "")
        if kind:
            counts[kind] = counts.get(kind, 0) + value
    return counts


# ---------------------------------------------------------------- placement


def home_node(nodes: list[dict[str, Any]], username: str, swarm: dict[str, Any]) -> dict[str, Any]:
    """The node holding `username`'s files: the one with their home label, else the manager
    (every volume made before the Swarm existed is there)."""
    key = swarm["home_label_prefix"] + username
    for node in nodes:
        if node_labels(node).get(key) == "true":
            return node
    for node in nodes:
        if node.get("ID") == swarm["manager_node_id"]:
            return node
    raise PlacementRefused(
        "The machine that holds your files is no longer part of this hub. "
        "Please tell the hub's owner."
    )


def check_home(node: dict[str, Any], username: str, image: str, swarm: dict[str, Any]) -> None:
    """Refuse at once (instead of waiting for the start timeout) when the server cannot run
    on its home node now."""
    name = node_name(node)
    if not node_ready(node):
        raise PlacementRefused(
            f"Your files are on {name}, which is not reachable right now. "
            f"Your server can start again when {name} is back."
        )
    if not node_active(node):
        raise PlacementRefused(
            f"Your files are on {name}, which is paused for maintenance. "
            f"Your server can start again when the hub's owner brings {name} back."
        )
    label = swarm["image_node_labels"].get(image)
    if label and node_labels(node).get(label) != "true":
        wanted = label.rsplit(".", 1)[-1]
        raise PlacementRefused(
            f"This image runs only on machines labelled '{wanted}', and your files are on "
            f"{name}. The hub's owner can move them: hubd user move {username} --to NODE."
        )
    if image in swarm["gpu_images"] and not has_gpu(node, swarm):
        raise PlacementRefused(
            f"This image needs a GPU, and your files are on {name}, which has none. The "
            f"hub's owner can move them: hubd user move {username} --to NODE."
        )


def constraints(node: dict[str, Any]) -> list[str]:
    return [f"node.id=={node['ID']}"]


def has_gpu(node: dict[str, Any], swarm: dict[str, Any]) -> bool:
    """Whether the node's engine advertises a GPU (`node-generic-resources` in its
    daemon.json), as Swarm lists it in the node's description."""
    return swarm["gpu_resource_kind"] in node_resources(node)


def gpu_environment(image: str, swarm: dict[str, Any]) -> dict[str, str]:
    """What a GPU image's server gets so that the NVIDIA container runtime (the GPU node's
    default runtime) exposes the node's GPUs to it.

    Not a Swarm reservation of the generic resource: Swarm's constraint enforcer rejects a
    running task that holds one at the next update of its node (any label change), as its
    check is inverted (moby/swarmkit, constraint_enforcer.go, `HasResource`). So the GPUs of
    a node are shared by the GPU servers on it."""
    if image in swarm["gpu_images"]:
        return {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    return {}


def task_address(task: dict[str, Any], network_name: str) -> str | None:
    """The task's own IP on `network_name`, without its prefix length.

    The hub and the proxy reach a person's server by this address, not by the service's name:
    Docker's DNS can keep answering with the address of a task that has gone (seen after a
    person moved to another node), and then the new server looks unreachable until the start
    timeout."""
    for attachment in task.get("NetworksAttachments") or []:
        network = attachment.get("Network") or {}
        if (network.get("Spec") or {}).get("Name") != network_name:
            continue
        for address in attachment.get("Addresses") or []:
            return str(address).split("/", 1)[0]
    return None


def task_problem(task: dict[str, Any], node: dict[str, Any] | None) -> str | None:
    """Why a starting task will never run, or None while it may still."""
    status = task.get("Status") or {}
    state = str(status.get("State") or "").lower()
    if state in ENDED_TASK_STATES:
        why = status.get("Err") or status.get("Message") or state
        return f"Your server could not start on {node_name(node or {})}: {why}"
    if node is not None and node_state(node) == "down":
        name = node_name(node)
        return (
            f"Your files are on {name}, which went away while your server was starting. "
            f"Your server can start again when {name} is back."
        )
    return None
