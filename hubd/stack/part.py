"""What every part of a stack (the hub, the proxy, the front, the images) works with."""

from __future__ import annotations

import docker

from hubd.config import Config
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
