"""What every part of a stack (the hub, the proxy, the front, the images) works with."""

from __future__ import annotations

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.stack.containers import ContainerState, container_state, refuse_foreign
from hubd.stack.naming import StackNames
from hubd.stack.progress import Reporter
from hubd.timing import Timing


class StackPart:
    """The engine, the config, the stack's names, where progress goes, and the timing."""

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        names: StackNames,
        reporter: Reporter,
        timing: Timing,
    ) -> None:
        self.client = client
        self.config = config
        self.names = names
        self.reporter = reporter
        self.timing = timing


class ContainerPart(StackPart):
    """A part that is one container of the stack (the hub, the proxy, the front), by name."""

    @property
    def container_name(self) -> str:
        raise NotImplementedError

    def find(self, name: str | None = None) -> Container | None:
        """The container (or the stack's container `name`), None when there is none; one of
        another stack is refused."""
        try:
            container = self.client.containers.get(name or self.container_name)
        except NotFound:
            return None
        refuse_foreign("container", container, self.names.stack)
        return container

    def state(self) -> ContainerState:
        return container_state(self.find())
