"""People's servers as Swarm services (made by the hub's spawner, hub_image/hubd_swarm.py),
as hubd sees them from the manager: listed with their task's state, removed on `down`."""

from __future__ import annotations

import contextlib
from typing import Any

from docker.errors import NotFound

from hubd.stack.naming import LABEL_USER, ROLE_USER_SERVER, StackNames
from hubd.status import UserServer


def user_services(client: Any, names: StackNames) -> list[Any]:
    return list(client.services.list(filters=names.filters(ROLE_USER_SERVER)))


def current_task(service: Any) -> dict[str, Any] | None:
    """The task the service wants running, else its newest (one task per person)."""
    tasks = service.tasks()
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    ordered = sorted(wanted or tasks, key=lambda t: str(t.get("UpdatedAt") or ""))
    return ordered[-1] if ordered else None


def service_user(service: Any) -> str:
    """Whose server the service is (the label the hub's spawner gives it)."""
    labels = (service.attrs.get("Spec") or {}).get("Labels") or {}
    return str(labels.get(LABEL_USER, service.name))


def user_server(service: Any) -> UserServer:
    task = current_task(service) or {}
    state = str((task.get("Status") or {}).get("State") or "pending")
    return UserServer(
        user=service_user(service),
        container=service.name,
        running=state == "running",
        status=state,
    )


def remove_user_services(client: Any, names: StackNames) -> list[str]:
    removed = []
    for service in user_services(client, names):
        with contextlib.suppress(NotFound):
            service.remove()
            removed.append(service.name)
    return removed
