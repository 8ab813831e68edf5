"""`hubd node add | list | remove | label`: the machines of the hub's Swarm, from the manager.

hubd's own engine becomes the Swarm manager on the first `node add` and stays it: the hub,
the proxy and the docker gate run there. Other machines join as workers with the command
`add` returns; hubd never reaches into them. The rules (what may be removed, which node a
name means) are in placement.py; this module asks the engine and acts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, NotFound

from hubd.errors import NodeError
from hubd.stack.naming import LABEL_USER, ROLE_USER_DATA, ROLE_USER_SERVER, StackNames
from hubd.stack.swarm.homes import (
    homes_in,
    local_node_id,
    node_label,
    swarm_manager,
    update_labels,
    update_spec,
)
from hubd.stack.swarm.placement import (
    advertise_problem,
    check_label,
    home_problem,
    join_command,
    node_view,
    removal_problem,
    resolve,
    roomiest,
)
from hubd.stack.swarm.services import current_task, service_user, user_services
from hubd.status import NodeView
from hubd.timing import Timing

log = logging.getLogger(__name__)

# Swarm task states after which a task holds nothing on its node any more.
_GONE_TASK_STATES = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


@dataclass(frozen=True)
class NodeAddition:
    """What `hubd node add` tells the owner."""

    join_command: str
    address: str  # where the manager is reached (its advertised address)
    created: bool  # the Swarm was made just now (the hub switches to Swarm mode)

    def to_json(self) -> dict[str, Any]:
        return {"join_command": self.join_command, "address": self.address, "created": self.created}


class Nodes:
    def __init__(self, client: Any, names: StackNames, timing: Timing) -> None:
        self.client = client
        self.names = names
        self.timing = timing

    # ------------------------------------------------------------------ reading

    def views(self) -> tuple[NodeView, ...]:
        """Every node, hubd's own first; empty on one machine (no Swarm)."""
        if not swarm_manager(self.client):
            return ()
        nodes = [node.attrs for node in self.client.nodes.list()]
        local = local_node_id(self.client)
        homes = homes_in(nodes, self.names)
        running = self._running()
        views = [node_view(attrs, homes, running, local) for attrs in nodes]
        return tuple(sorted(views, key=lambda v: (not v.this_machine, v.hostname, v.id)))

    def find(self, wanted: str) -> NodeView:
        return resolve(self.views(), wanted)

    def _running(self) -> dict[str, str]:
        """username -> the node where their server's task runs now."""
        running: dict[str, str] = {}
        for service in user_services(self.client, self.names):
            try:
                task = current_task(service)
            except NotFound:  # removed meanwhile: the server stopped
                continue
            if task and (task.get("Status") or {}).get("State") == "running":
                running[service_user(service)] = str(task.get("NodeID") or "")
        return running

    # ------------------------------------------------------------------ add

    def add(self, advertise_addr: str | None = None) -> NodeAddition:
        """Make hubd's engine a Swarm manager if it is not one yet, and say how another
        machine joins as a worker."""
        swarm = self.client.info().get("Swarm") or {}
        state = swarm.get("LocalNodeState") or "inactive"
        created = False
        if state == "active" and not swarm.get("ControlAvailable"):
            raise NodeError(
                "this machine's Docker engine is a worker in another Swarm; hubd's machine "
                "must be the manager (`docker swarm leave` here first)"
            )
        if state not in ("active", "inactive"):
            raise NodeError(
                f"this machine's Docker engine is in Swarm state {state!r}"
                + (f" ({swarm['Error']})" if swarm.get("Error") else "")
                + "; sort that out with `docker swarm` first"
            )
        if state == "inactive":
            self._refuse_plain_servers()
            try:
                self.client.swarm.init(advertise_addr=advertise_addr or None)
            except APIError as exc:
                text = str(exc.explanation or exc)
                raise NodeError(
                    advertise_problem(text)
                    or f"this machine could not become a Swarm manager: {text}"
                ) from None
            created = True
            log.info("this machine is now a Swarm manager: people's servers become services")
        self.client.swarm.reload()
        token = str(self.client.swarm.attrs["JoinTokens"]["Worker"])
        address = str((self.client.info().get("Swarm") or {}).get("NodeAddr") or "")
        return NodeAddition(join_command(token, address), address, created)

    def _refuse_plain_servers(self) -> None:
        """People's servers running as plain containers would not be services: the hub in
        Swarm mode would neither see nor stop them. Refused rather than stopped for them."""
        people = []
        for container in self.client.containers.list(filters=self.names.filters(ROLE_USER_SERVER)):
            env = dict(
                item.split("=", 1)
                for item in (container.attrs.get("Config") or {}).get("Env") or []
                if "=" in item
            )
            people.append(env.get("JUPYTERHUB_USER") or container.name)
        if people:
            listed = ", ".join(sorted(people))
            raise NodeError(
                f"servers are running on this machine ({listed}): they would be left behind "
                "when the hub moves to the Swarm; stop them first (the hub's admin page, or "
                "`hubd down` then `hubd up`), then `hubd node add` again"
            )

    # ------------------------------------------------------------------ remove

    def remove(self, wanted: str) -> dict[str, Any]:
        """Drain the node, wait for its tasks to leave, and take it out of the Swarm.
        Refused for the manager and for a node where people have their files."""
        view = self.find(wanted)
        problem = removal_problem(view)
        if problem:
            raise NodeError(problem)
        node = self.client.nodes.get(view.id)
        if view.ready:
            if view.availability != "drain":
                update_spec(node, lambda spec: {**spec, "Availability": "drain"})
            self._wait_tasks_gone(view)
        node.reload()
        down = (node.attrs.get("Status") or {}).get("State") != "ready"
        try:
            # The engine removes a node that is down as it is; one still up only by force
            # (its engine then still believes it is in the Swarm: the CLI says to leave).
            node.remove(force=not down)
        except NotFound:
            pass  # gone meanwhile: removed enough
        except APIError as exc:
            raise NodeError(f"could not remove {view.hostname}: {exc.explanation or exc}") from None
        log.info("node %s (%s) removed from the Swarm", view.hostname, view.id[:12])
        return {"node": view.hostname, "id": view.id, "was_up": not down}

    def _wait_tasks_gone(self, view: NodeView) -> None:
        deadline = time.monotonic() + self.timing.node_drain_deadline_s
        while True:
            left = [
                task
                for task in self.client.api.tasks(filters={"node": view.id})
                if str((task.get("Status") or {}).get("State") or "") not in _GONE_TASK_STATES
            ]
            if not left:
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "%d task(s) still on %s after %.0f s of draining; removing it anyway",
                    len(left),
                    view.hostname,
                    self.timing.node_drain_deadline_s,
                )
                return
            time.sleep(self.timing.node_drain_poll_s)

    # ------------------------------------------------------------------ labels

    def label(self, wanted: str, label: str, remove: bool = False) -> dict[str, Any]:
        """Give a node (or take away) an owner label, for `image_nodes` placement."""
        check_label(label)
        view = self.find(wanted)
        had = label in view.labels
        if had == (not remove):
            changed = False
        else:
            key = node_label(label)
            node = self.client.nodes.get(view.id)
            if remove:
                update_labels(node, remove=(key,))
            else:
                update_labels(node, add={key: "true"})
            changed = True
        labels = sorted(set(view.labels) - {label}) if remove else sorted({*view.labels, label})
        return {"node": view.hostname, "id": view.id, "labels": labels, "changed": changed}

    # ------------------------------------------------------------------ homes

    def check_home_for_new_account(self, wanted: str, username: str) -> NodeView:
        """The node a new account will live on, refused when it cannot: not ready or not
        active, or the person's files from an earlier account are elsewhere already."""
        if not swarm_manager(self.client):
            raise NodeError(
                "this hub runs on one machine: --node needs another machine first (`hubd node add`)"
            )
        views = self.views()
        view = resolve(views, wanted)
        problem = home_problem(view)
        if problem:
            raise NodeError(problem)
        for node in views:
            if username in node.homes and node.id != view.id:
                raise NodeError(
                    f"{username}'s files from before are on {node.hostname}: add them without "
                    "--node (they live there), or move them later (`hubd user move`)"
                )
        if not view.this_machine and self._local_volume(username):
            raise NodeError(
                f"{username}'s files from before are on this machine: add them without "
                "--node, then move them if you like (`hubd user move`)"
            )
        return view

    def home_with_room(
        self, username: str, accounts: Callable[[], Iterable[str]]
    ) -> NodeView | None:
        """A new account's home when the owner names none (placement.roomiest), or None:
        one machine, or the person's files from an earlier account are somewhere already."""
        views = self.views()
        if not views or any(username in v.homes for v in views) or self._local_volume(username):
            return None
        manager = next((v.id for v in views if v.this_machine), "")
        people: dict[str, int] = {}
        labelled = {person for v in views for person in v.homes}
        for view in views:
            people[view.id] = len(view.homes)
        # People without a home label live on the manager.
        people[manager] = people.get(manager, 0) + len(set(accounts()) - labelled)
        return roomiest(views, people)

    def _local_volume(self, username: str) -> bool:
        filters = self.names.filters(ROLE_USER_DATA)
        filters["label"].append(f"{LABEL_USER}={username}")
        return bool(self.client.volumes.list(filters=filters))
