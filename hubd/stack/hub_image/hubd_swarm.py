"""Runs inside the hub container: people's servers as Swarm services, each on its home node.

dockerspawner's SwarmSpawner, mended where it fails hubd's lab Swarm:
- named volumes: SwarmSpawner 14 mounts them as binds with a volume name as the source, which
  Swarm rejects, and then waits until the start timeout (dockerspawner #536). Here they are
  `type=volume` mounts, labelled, so the node's engine creates them as hubd's.
- placement: a person's volume lives on one node, so their service is pinned there
  (swarm_placement.py decides), and a home node that is down, drained or lacks what the image
  needs is said at once on the spawn page instead of after the start timeout;
- a task the Swarm rejects or that fails ends the start at once with the engine's reason;
- the endpoint is `dnsrr`: one task per person needs no virtual IP (and none exists on hosts
  without IPVS); the hub and the proxy reach the server at its task's address on the person's
  own overlay network (the service name can resolve to a task that has gone);
- GPUs: a GPU image (config `gpu_images`) starts only on a node whose engine advertises one,
  and gets the variables by which the NVIDIA runtime exposes that node's GPUs; no Swarm
  reservation (swarm_placement.gpu_environment says why);
- hardening as for containers where services have it: no capabilities, a PID limit, memory
  and CPU limits (Engine 20.10 services have no no-new-privileges; the gate checks the rest).
"""

from __future__ import annotations

import asyncio
from typing import Any

from docker.types import Mount
from dockerspawner import SwarmSpawner
from swarm_placement import (
    PlacementRefused,
    check_home,
    constraints,
    gpu_environment,
    home_node,
    node_name,
    node_state,
    task_address,
    task_problem,
)
from tornado import web
from traitlets import Dict, Unicode

try:
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub before 6
    SpawnException = None


def cannot_start(message: str) -> Exception:
    """Why a person's server cannot start now, in words for them. JupyterHub passes an HTTP
    error through to the spawn page (anything else becomes "Unhandled error starting
    server"), shows its `jupyterhub_message` there and in the progress stream, and logs a
    SpawnException (JupyterHub 6) as a refusal, without a traceback."""
    error: Exception
    if SpawnException is not None:
        error = SpawnException(message, reason="placement", status_code=503)
    else:
        error = web.HTTPError(503, "%s", message)
    setattr(error, "jupyterhub_message", message)  # noqa: B010 (not an attribute it declares)
    return error


class HubdSwarmSpawner(SwarmSpawner):  # type: ignore[misc]
    swarm = Dict(config=True, help="hubd's Swarm settings (hubd/stack/settings.py)")
    volume_labels = Dict(config=True, help="labels of a person's volume")
    container_labels = Dict(config=True, help="labels of a person's service and container")
    user_label = Unicode(config=True, help="the label naming the person (io.hubd.user)")

    @property
    def mounts(self) -> list[Mount]:
        mounts = []
        for source, volume in self.volume_binds.items():
            read_only = volume["mode"] == "ro"
            if source.startswith("/"):
                mounts.append(Mount(volume["bind"], source, type="bind", read_only=read_only))
            else:
                labels = {**self.volume_labels, self.user_label: self.user.name}
                mounts.append(
                    Mount(volume["bind"], source, type="volume", read_only=read_only, labels=labels)
                )
        return mounts

    async def _home(self) -> dict[str, Any]:
        nodes = await self.docker("nodes")
        home: dict[str, Any] = home_node(nodes, self.user.name, self.swarm)
        return home

    async def create_object(self) -> Any:
        try:
            node = await self._home()
            check_home(node, self.user.name, self.image, self.swarm)
        except PlacementRefused as refused:
            raise cannot_start(str(refused)) from None
        labels = {**self.container_labels, self.user_label: self.user.name}
        self.extra_create_kwargs: dict[str, Any] = {**self.extra_create_kwargs, "labels": labels}
        self.extra_container_spec: dict[str, Any] = {
            **self.extra_container_spec,
            "labels": labels,
            "cap_drop": list(self.swarm["cap_drop"]),
        }
        self.extra_placement_spec = {"constraints": constraints(node)}
        self.extra_endpoint_spec = {"mode": "dnsrr"}
        self.extra_task_spec = {"restart_policy": {"Condition": "none"}}
        self._home_id = node["ID"]
        return await super().create_object()

    def get_env(self) -> dict[str, str]:
        return {**super().get_env(), **gpu_environment(self.image, self.swarm)}

    async def docker(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "create_service":
            # docker-py's Resources has no PID limit; the engine's API does (1.41).
            resources = kwargs["task_template"].setdefault("Resources", {})
            resources.setdefault("Limits", {})["Pids"] = self.swarm["pids_limit"]
        return await super().docker(method, *args, **kwargs)

    async def start_object(self) -> None:
        """Wait until the server's task runs; give up at once with the reason when it never
        will (rejected, failed, its node gone)."""
        while True:
            task = await self.get_task()
            if not task:
                raise RuntimeError(f"Service {self.service_name} not found")
            if str(task["Status"]["State"]).lower() == "running":
                return
            node = await self._node(task.get("NodeID") or getattr(self, "_home_id", ""))
            problem = task_problem(task, node)
            if problem:
                raise cannot_start(problem)
            await asyncio.sleep(self.swarm["poll_s"])

    async def get_ip_and_port(self) -> tuple[str, int]:
        task = await self.get_task()
        address = task_address(task or {}, self.network_name)
        if address is None:
            raise cannot_start(
                f"Your server started but has no address on {self.network_name}; "
                "please try again, and tell the hub's owner if this repeats."
            )
        return address, int(self.port)

    async def poll(self) -> Any:
        """A server whose node went away counts as stopped: the Swarm still lists its task as
        running (it cannot hear from the node), but nobody can reach it. The person then
        starts again and reads on the spawn page why that waits for the node."""
        task = await self.get_task()
        if task and str(task["Status"]["State"]).lower() == "running":
            node = await self._node(task.get("NodeID") or "")
            if node is not None and node_state(node) == "down":
                return f"its node {node_name(node)} is unreachable"
        return await super().poll()

    async def _node(self, node_id: str) -> dict[str, Any] | None:
        if not node_id:
            return None
        try:
            return dict(await self.docker("inspect_node", node_id))
        except Exception:
            return None
