"""Runs inside the hub container: hubd's DockerSpawner for one machine.

On top of DockerSpawner it
- puts each person's server on a network of its own whose /29 comes from the people's block
  hubd picked (user_subnets.py; the engine's default pools hold only ~31 networks);
- refuses a server whose memory limit would push the running servers' limits past what the
  machine has (so nobody is OOM-killed mid-work because the machine promised too much);
- gives servers from the GPU images the machine's GPUs (one DeviceRequest for all of them);
- turns every failure into one sentence for the person (spawn_messages.py) while the
  engine's own text goes to the log.
"""

from __future__ import annotations

import asyncio
from typing import Any

from docker.errors import APIError
from docker.types import IPAMConfig, IPAMPool
from dockerspawner import DockerSpawner
from spawn_messages import BlockFull, NoMemory, person_message
from tornado import web
from traitlets import Dict
from user_subnets import candidates, is_overlap, slot_count

try:
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub before 6
    SpawnException = None

GPU_REQUEST = {"count": -1, "capabilities": [["gpu"]]}


def person_error(exc: BaseException) -> Exception:
    """What JupyterHub shows the person (its `jupyterhub_message`, on the spawn page and in
    the progress stream) for `exc`; the engine's text stays in the log message."""
    said = person_message(exc)
    if SpawnException is not None:
        error = SpawnException(said.text, reason=said.reason, log_message=str(exc))
    else:
        error = web.HTTPError(400, "%s", str(exc))
    setattr(error, "jupyterhub_message", said.text)  # noqa: B010 (not declared by the class)
    return error  # type: ignore[no-any-return]


async def friendly(spawner: Any, work: Any) -> Any:
    """Await `work`; any failure becomes `person_error` (already converted ones pass)."""
    try:
        return await work
    except Exception as exc:
        if getattr(exc, "jupyterhub_message", None):
            raise
        spawner.log.error("Starting %s's server failed: %s", spawner.user.name, exc)
        raise person_error(exc) from exc


async def join_members(spawner: Any, network: Any, members: list[str]) -> None:
    """The stack's members (the hub, the proxy and its standby) on a person's network, for
    either spawner (this one, or hubd_swarm.py's on a Swarm). One that does not exist now (a
    proxy being recreated) is skipped: hubd joins a new member to every person's network when
    it creates it (user_networks.py)."""
    joined = {c.get("Name") for c in (network.get("Containers") or {}).values()}
    for member in members:
        if member in joined:
            continue
        try:
            await spawner.docker("connect_container_to_network", member, network["Name"])
        except APIError as exc:
            if exc.status_code != 404:
                raise
            spawner.log.info("%s does not exist now: not joined to %s", member, network["Name"])


class Subnets:
    """The /29s this hub knows are taken, and one lock so that its own concurrent spawns
    never try the same one at once (others are caught by the engine's overlap refusal)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.lock = asyncio.Lock()


SUBNETS = Subnets()


class HubdDockerSpawner(DockerSpawner):  # type: ignore[misc]
    hubd = Dict(config=True, help="hubd's settings (hubd/stack/settings.py)")

    async def start(self) -> Any:
        return await friendly(self, self._start())

    async def _start(self) -> Any:
        self._check_memory()
        await self._own_network()
        return await super().start()

    # -- memory

    def _check_memory(self) -> None:
        """Refuse when what the running (and starting) servers are promised plus this one
        would exceed the machine's memory less hubd's reserve (hubd/stack/capacity.py)."""
        room = int(self.hubd.get("memory_for_servers") or 0)
        each = int(self.hubd.get("memory_promised_per_server") or 0)
        if not room or not each:
            return
        promised = each * len(self._other_active_spawners())
        if promised + each > room:
            raise NoMemory(
                f"memory promised to running servers {promised} + {each} bytes would exceed "
                f"the {room} bytes this machine has for servers; lower mem_limit or "
                "active_server_limit in hubd's config"
            )

    def _other_active_spawners(self) -> list[Any]:
        from jupyterhub.app import JupyterHub

        users = JupyterHub.instance().users
        return [
            spawner
            for user in list(users.values())
            for spawner in user.spawners.values()
            if spawner is not self and spawner.active
        ]

    # -- the person's own network

    async def _own_network(self) -> None:
        settings = self.hubd
        name = settings["user_network_prefix"] + self.escaped_name
        try:
            network = await self.docker("inspect_network", name)
        except APIError as exc:
            if exc.status_code != 404:
                raise
            network = await self._create_network(name)
        await join_members(self, network, settings["user_network_members"])
        self.network_name = name

    async def _create_network(self, name: str) -> Any:
        settings = self.hubd
        labels = {**settings["user_network_labels"], settings["user_label"]: self.user.name}
        block = settings.get("user_network_block")
        if not block:
            await self.docker("create_network", name, labels=labels, driver="bridge")
            return await self.docker("inspect_network", name)
        async with SUBNETS.lock:
            for attempt in range(2):
                # A second pass forgets what it knew: networks may have gone meanwhile.
                if attempt:
                    SUBNETS.taken.clear()
                for subnet in candidates(block, name, SUBNETS.taken):
                    try:
                        await self.docker(
                            "create_network",
                            name,
                            labels=labels,
                            driver="bridge",
                            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]),
                            check_duplicate=True,
                        )
                    except APIError as exc:
                        if is_overlap(str(exc)):
                            SUBNETS.taken.add(subnet)
                            continue
                        if exc.status_code == 409:  # made meanwhile, by a spawn of before
                            return await self.docker("inspect_network", name)
                        raise
                    SUBNETS.taken.add(subnet)
                    return await self.docker("inspect_network", name)
        self.log.error(
            "people's networks: all %d /29 subnets of %s are in use; set user_network_block "
            "in hubd's config to a larger free private range (e.g. a /15) and run `hubd up`",
            slot_count(block),
            block,
        )
        raise BlockFull(f"no free /29 left in {block}")

    # -- GPUs

    async def create_object(self) -> Any:
        # Set on every start: the same person may pick another image next time.
        extra: dict[str, Any] = getattr(self, "extra_host_config", None) or {}
        host = {k: v for k, v in extra.items() if k != "device_requests"}
        if self.image in set(self.hubd.get("gpu_images") or ()):
            host["device_requests"] = [dict(GPU_REQUEST)]
        self.extra_host_config = host
        return await super().create_object()
