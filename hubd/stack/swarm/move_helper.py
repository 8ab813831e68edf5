"""The helper services of `hubd user move`: one-shot Swarm services, each pinned to one node,
running move_payload.py in the user image (Python is there; the backup image is on the
manager only).

A volume lives on one node and only that node's engine can reach it; hubd talks to the
manager's engine alone. So the sender runs on the source node with the person's volume mounted
read-only, the receiver on the target node with a volume of the same name and labels (its
engine makes it for the mount), and the tar stream goes between their tasks over a private
overlay network of the move (endpoint mode dnsrr: the lab's kernels have no IPVS for VIPs).
What each helper says (its manifest, an error) comes back as service logs.

Hardening as for backups' helpers, in Swarm's terms: no network but the move's own, every
capability dropped but the few file ones each side needs, a read-only root file system, and
labels (stack, role, person) so that cleanup and `hubd down` find them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.errors import APIError, NotFound
from docker.types import EndpointSpec, Mount, RestartPolicy

from hubd.errors import StackError
from hubd.stack.naming import LABEL_USER, ROLE_USER_DATA, StackNames
from hubd.stack.swarm import move_payload
from hubd.timing import Timing

log = logging.getLogger(__name__)

ROLE_MOVE_HELPER = "move-helper"
ROLE_MOVE_NETWORK = "move-network"
MOUNT_POINT = "/hubd-move/home"  # absent from images, so Docker copies nothing into a new volume
PORT = 7070
# Reading everything: DAC_READ_SEARCH. Writing it back as it was: owners (CHOWN), modes of
# files it does not own (FOWNER), setgid bits (FSETID), folders without write permission
# (DAC_OVERRIDE).
SENDER_CAPS = ["CAP_DAC_READ_SEARCH"]
RECEIVER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID"]
WIPER_CAPS = ["CAP_DAC_OVERRIDE"]
FINISHED = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
_SCRIPT = Path(move_payload.__file__).read_text()


@dataclass(frozen=True)
class Outcome:
    """How a helper's one task ended, and what it printed."""

    node: str  # hostname, for messages
    state: str
    exit_code: int | None
    lines: list[str] = field(default_factory=list)
    error: str = ""  # Swarm's word on the task (no such image, ...)

    @property
    def ok(self) -> bool:
        return self.state == "complete" and self.exit_code == 0

    def manifest(self) -> list[list[object]] | None:
        chunks = [line[len("MANIFEST ") :] for line in self.lines if line.startswith("MANIFEST ")]
        return move_payload.decode("".join(chunks)) if chunks else None

    def summary(self) -> dict[str, Any] | None:
        for line in self.lines:
            if line.startswith("SUMMARY "):
                data = json.loads(line[len("SUMMARY ") :])
                return data if isinstance(data, dict) else None
        return None

    def problem(self) -> str:
        """One line on why it failed: its own ERROR line, Swarm's, or its last words."""
        for line in self.lines:
            if line.startswith("ERROR "):
                return line[len("ERROR ") :]
        words = [line for line in self.lines if line.strip() and not line.startswith("MANIFEST")]
        if words:
            return words[-1].strip()
        return self.error or f"{self.state} (exit {self.exit_code})"


class MoveHelpers:
    """The helpers of one person's move; `remove_all` takes away every one of them."""

    def __init__(
        self, client: Any, names: StackNames, image: str, user: str, timing: Timing
    ) -> None:
        self.client = client
        self.names = names
        self.image = image
        self.user = user
        self.timing = timing

    def _labels(self, role: str) -> dict[str, str]:
        return self.names.labels(role, **{LABEL_USER: self.user})

    def _name(self, kind: str) -> str:
        # A service's name must be a DNS name component: no dots.
        return f"{self.names.stack}-move-{kind}-{escaped_username(self.user)}"

    @property
    def network(self) -> str:
        return self._name("net")

    @property
    def receiver(self) -> str:
        return self._name("receive")

    def volume_mount(self, volume: str, read_only: bool) -> Mount:
        labels = self.names.labels(ROLE_USER_DATA, **{LABEL_USER: self.user})
        return Mount(
            MOUNT_POINT, volume, type="volume", read_only=read_only, no_copy=True, labels=labels
        )

    def create_network(self) -> None:
        try:
            self.client.networks.create(
                self.network, driver="overlay", labels=self._labels(ROLE_MOVE_NETWORK)
            )
        except APIError as exc:
            raise StackError(f"could not make the move's network: {exc.explanation}") from None

    def start(
        self,
        kind: str,
        node_id: str,
        args: list[str],
        mount: Mount,
        caps: list[str],
        network: bool = True,
    ) -> Any:
        try:
            return self.client.services.create(
                self.image,
                command=["python3", "-c", _SCRIPT, *args],
                name=self._name(kind),
                labels=self._labels(ROLE_MOVE_HELPER),
                container_labels=self._labels(ROLE_MOVE_HELPER),
                mounts=[mount],
                networks=[self.network] if network else [],
                endpoint_spec=EndpointSpec(mode="dnsrr"),
                restart_policy=RestartPolicy(condition="none"),
                constraints=[f"node.id=={node_id}"],
                user="0:0",
                cap_drop=["ALL"],
                cap_add=caps,
                read_only=True,
                env=[
                    "PYTHONDONTWRITEBYTECODE=1",
                    f"{move_payload.ENV_IO_TIMEOUT}={self.timing.move_io_timeout_s}",
                    f"{move_payload.ENV_CONNECT_DEADLINE}={self.timing.move_connect_deadline_s}",
                    f"{move_payload.ENV_CONNECT_RETRY}={self.timing.move_connect_retry_s}",
                ],
            )
        except APIError as exc:
            raise StackError(f"could not start the move's {kind} helper: {exc}") from None

    def wait(self, service: Any, node: str, deadline: float) -> Outcome:
        """Until the helper's task has ended (or it never started, or the deadline passed)."""
        started = time.monotonic()
        while True:
            outcome = self.poll(service, node, started, deadline)
            if outcome is not None:
                return outcome
            time.sleep(self.timing.move_helper_poll_s)

    def wait_running(self, service: Any, node: str, deadline: float) -> Outcome | None:
        """Until the helper's task runs: None then, or how it ended (or stalled) before."""
        started = time.monotonic()
        while True:
            status = _task_status(service)
            if status.get("State") == "running":
                return None
            outcome = self._judge(service, node, status, started, deadline)
            if outcome is not None:
                return outcome
            time.sleep(self.timing.move_helper_poll_s)

    def poll(self, service: Any, node: str, started: float, deadline: float) -> Outcome | None:
        """How the helper ended; None while it still runs (or waits to, not for too long)."""
        return self._judge(service, node, _task_status(service), started, deadline)

    def _judge(
        self, service: Any, node: str, status: dict[str, Any], started: float, deadline: float
    ) -> Outcome | None:
        state = str(status.get("State") or "new")
        if state not in FINISHED:
            now = time.monotonic()
            waiting = state in ("new", "pending", "assigned", "accepted", "preparing")
            if now > deadline or (
                waiting and now > started + self.timing.move_helper_start_deadline_s
            ):
                why = status.get("Err") or status.get("Message") or state
                return Outcome(node, "timeout", None, [], f"the helper on {node} stalled: {why}")
            return None
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        return Outcome(
            node,
            state,
            int(exit_code) if exit_code is not None else None,
            self._logs(service),
            str(status.get("Err") or ""),
        )

    def _logs(self, service: Any) -> list[str]:
        try:
            chunks = service.logs(stdout=True, stderr=True, follow=False)
            text = b"".join(chunks).decode(errors="replace")
        except APIError as exc:
            log.warning("move: could not read the helper's output: %s", exc)
            return []
        return text.splitlines()

    def run(self, kind: str, node_id: str, node: str, args: list[str], mount: Mount) -> Outcome:
        """One helper without a network (wipe), start to end, removed afterwards."""
        service = self.start(kind, node_id, args, mount, WIPER_CAPS, network=False)
        try:
            deadline = time.monotonic() + self.timing.move_copy_deadline_s
            return self.wait(service, node, deadline)
        finally:
            _remove(service)

    def remove_all(self) -> None:
        """Every helper service and the network of this person's move (also a killed run's)."""
        wanted = self._labels(ROLE_MOVE_HELPER)
        filters = {"label": [f"{k}={v}" for k, v in wanted.items()]}
        for service in self.client.services.list(filters=filters):
            _remove(service)
        net_labels = self._labels(ROLE_MOVE_NETWORK)
        net_filters = {"label": [f"{k}={v}" for k, v in net_labels.items()]}
        # The network goes once its tasks' endpoints have (a moment after the services).
        deadline = time.monotonic() + self.timing.move_helper_start_deadline_s
        for network in self.client.networks.list(filters=net_filters):
            while True:
                try:
                    network.remove()
                    break
                except NotFound:
                    break
                except APIError:
                    if time.monotonic() > deadline:
                        log.warning("move: network %s is still in use; left behind", network.name)
                        break
                    time.sleep(self.timing.move_helper_poll_s)


def escaped_username(name: str) -> str:
    """DockerSpawner's escaped name (its `_escape`): what its volume names are made of, and
    a valid DNS name component (which a service's name must be)."""
    safe = set(string.ascii_lowercase + string.digits)
    return "".join(
        ch if ch in safe else "".join(f"-{byte:02x}" for byte in ch.encode()) for ch in name
    )


def remove_move_helpers(client: Any, names: StackNames) -> list[str]:
    """Every move helper service of this stack (`hubd down`; a move killed half-way)."""
    removed = []
    for service in client.services.list(filters=names.filters(ROLE_MOVE_HELPER)):
        _remove(service)
        removed.append(str(service.name))
    return removed


def _remove(service: Any) -> None:
    with contextlib.suppress(NotFound, APIError):
        service.remove()


def _task_status(service: Any) -> dict[str, Any]:
    """The Status of the helper's one task (restart policy none: the last is the only)."""
    tasks = service.tasks()
    task = tasks[-1] if tasks else {}
    return dict(task.get("Status") or {})
