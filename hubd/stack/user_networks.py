"""People's networks: one per person's server, joined only by the stack's own members.

A person's server sits alone on `<stack>-unet-<name>` with the hub (which proxies to it and
answers its API calls), so one person's container cannot open a connection to another's. The
hub makes and joins these networks when it spawns (hub_image/jupyterhub_config.py, through the
docker gate); hubd joins a new hub container to the existing ones, and removes a person's
network with their account.
"""

from __future__ import annotations

import logging
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


def join_user_networks(client: Any, names: StackNames, container: Container) -> None:
    """Join a (new) member of the stack to every person's network, so that servers still
    running from before reach it and it reaches them."""
    for network in user_networks(client, names):
        try:
            network.connect(container)
        except APIError as exc:
            if "already exists" not in str(exc):
                raise


def remove_user_network(client: Any, names: StackNames, user: str) -> None:
    for network in user_networks(client, names, user):
        try:
            network.reload()
            for member in network.containers:
                network.disconnect(member, force=True)
            network.remove()
        except NotFound:
            continue
