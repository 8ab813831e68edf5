"""What every command needs: paths, config, the engine, the daemon — each loaded when asked."""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from hubd.paths import Paths, default_mode, resolve_paths

if TYPE_CHECKING:
    # Loaded when a command first needs them: the Docker SDK and rich take ~0.3 s to import.
    import docker

    from hubd.config import Config
    from hubd.control.client import ControlClient
    from hubd.stack import Stack
    from hubd.stack.progress import Reporter
    from hubd.timing import Timing


class Context:
    # A plain class, not a dataclass: `dataclasses` imports `inspect`, ~10 ms of every start.
    def __init__(self, config_override: str | None = None) -> None:
        self.config_override = config_override
        # Where the daemon that `daemon()` found keeps its things (its log).
        self.daemon_paths: Paths | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        return cls(config_override=getattr(args, "config", None))

    @cached_property
    def paths(self) -> Paths:
        return resolve_paths()

    @cached_property
    def config_file(self) -> Path:
        chosen = self.config_override or os.environ.get("HUBD_CONFIG")
        return Path(chosen) if chosen else self.paths.config_file

    @cached_property
    def config(self) -> Config:
        from hubd.config import load_config

        return load_config(self.config_file)

    @cached_property
    def timing(self) -> Timing:
        from hubd.timing import timing_from_env

        return timing_from_env()

    @cached_property
    def reporter(self) -> Reporter:
        from hubd.stack.progress import reporter_for_terminal

        return reporter_for_terminal(self.timing)

    @cached_property
    def client(self) -> docker.DockerClient:
        from hubd.stack.engine import connect

        return connect(self.timing.engine_api_timeout_s)

    @cached_property
    def stack(self) -> Stack:
        from hubd.stack.lifecycle import Stack
        from hubd.stack.pins import PinStore

        # The config first: a mistake in it is said even while the engine is down, and
        # fixing it is the first thing to do either way.
        config = self.config
        return Stack(
            self.client,
            config,
            reporter=self.reporter,
            timing=self.timing,
            pins=PinStore(self.paths.image_pins_file, config.stack_name),
            state_dir=self.paths.state_dir,
        )

    def daemon(self) -> ControlClient | None:
        """The running daemon's client, or None when no daemon answers. A person without a
        daemon of their own reaches the system service (whose socket `control_group` opens
        to them). `daemon_paths` then says where that daemon keeps its things (its log).

        Right after `hubd service install` (or a boot) the service is starting and hubd has
        not opened its socket yet: a command typed at once waits for it rather than go round
        it (`hubd user add` would find no hub, `hubd up` would start a second one)."""
        client = self._answering_daemon()
        if client is None and self._service_starting():
            print("waiting for the hubd service to start…", file=sys.stderr)
            deadline = time.monotonic() + self.timing.service_answer_deadline_s
            while client is None and time.monotonic() < deadline:
                time.sleep(self.timing.daemon_up_poll_s)
                client = self._answering_daemon()
                if client is None and not self._service_starting():
                    break  # it failed or was stopped: go on without it, as before
        return client

    def _service_starting(self) -> bool:
        from hubd.errors import HubdError
        from hubd.service import installed_daemon

        try:
            manager = installed_daemon()
            return manager is not None and manager.starting()
        except (HubdError, OSError):  # no service manager here; a HOME we may not read
            return False

    def _answering_daemon(self) -> ControlClient | None:
        from hubd.control.client import ControlClient

        for paths in self._daemon_places():
            client = ControlClient(
                paths.control_socket, self.timing.control_client_timeout_s, self.timing
            )
            if client.is_available():
                self.daemon_paths = paths
                return client
        return None

    def control_sockets(self) -> list[Path]:
        return [paths.control_socket for paths in self._daemon_places()]

    def _daemon_places(self) -> list[Paths]:
        own = self.paths
        if default_mode() == "system":
            return [own]
        system = resolve_paths("system", environ={})
        return [own] if system.control_socket == own.control_socket else [own, system]
