"""People's networks: one per person's server, joined only by the stack's own members.

A person's server sits alone on `<stack>-unet-<name>` with the hub (which proxies to it and
answers its API calls), so one person's container cannot open a connection to another's. The
hub makes and joins these networks when it spawns (hub_image/jupyterhub_config.py, through the
docker gate); hubd joins a new hub container to the existing ones, and removes a person's
network with their account.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from hubd.stack.naming import LABEL_USER, ROLE_USER_NETWORK, StackNames

log = logging.getLogger(__name__)


def user_networks(client: Any, names: StackNames, user: str | None = None) -> list[Any]:
    filters = names.filters(ROLE_USER_NETWORK)
    if user is not None:
        filters["label"].append(f"{LABEL_USER}={user}")
    return list(client.networks.list(filters=filters))


# Joins are round trips to the engine that mostly wait (on its lock and netlink): a few at
# once take a hub restart with 40 people's networks from seconds to about a second.
JOIN_THREADS = 8


def join_user_networks(client: Any, names: StackNames, container: Container) -> None:
    """Join a (new) member of the stack to every person's network, so that servers still
    running from before reach it and it reaches them."""

    def join(network: Any) -> None:
        try:
            network.connect(container)
        except APIError as exc:
            if "already exists" not in str(exc):
                raise

    networks = user_networks(client, names)
    if not networks:
        return
    with ThreadPoolExecutor(max_workers=min(JOIN_THREADS, len(networks))) as pool:
        # list() re-raises the first failure, after every join has been tried.
        list(pool.map(join, networks))


def remove_idle_user_networks(client: Any, names: StackNames) -> list[str]:
    """Remove people's bridge networks that hold no person's server (only the stack's own
    members, or nothing): call only while no hub runs, which could be starting a server on
    one. Frees the engine's address pools of networks an older hubd made there, and keeps
    what a new hub must join to what is in use."""
    members = set(names.user_network_members)

    def idle(network: Any) -> str | None:
        try:
            network.reload()
            if network.attrs.get("Driver") != "bridge":
                return None  # a Swarm overlay: its servers run on other machines
            attached = {c.name for c in network.containers}
            if attached - members:
                return None
            for member in network.containers:
                network.disconnect(member, force=True)
            network.remove()
        except (NotFound, APIError) as exc:
            # In use after all, or gone: either way nothing to do.
            log.debug("kept person's network %s: %s", network.name, exc)
            return None
        return str(network.name)

    networks = user_networks(client, names)
    if not networks:
        return []
    with ThreadPoolExecutor(max_workers=min(JOIN_THREADS, len(networks))) as pool:
        return [name for name in pool.map(idle, networks) if name]


def remove_user_network(client: Any, names: StackNames, user: str) -> None:
    for network in user_networks(client, names, user):
        try:
            network.reload()
            for member in network.containers:
                network.disconnect(member, force=True)
            network.remove()
        except NotFound:
            continue
