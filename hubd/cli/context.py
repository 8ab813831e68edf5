"""What every command needs: paths, config, the engine, the daemon — each loaded when asked."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import docker

from hubd.config import Config, load_config
from hubd.control import ControlClient
from hubd.paths import Paths, default_mode, resolve_paths
from hubd.stack import Stack
from hubd.stack.pins import PinStore
from hubd.stack.progress import Reporter, reporter_for_terminal
from hubd.timing import Timing, timing_from_env


@dataclass
class Context:
    config_override: str | None = None

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
        return load_config(self.config_file)

    @cached_property
    def timing(self) -> Timing:
        return timing_from_env()

    @cached_property
    def reporter(self) -> Reporter:
        return reporter_for_terminal(self.timing)

    @cached_property
    def client(self) -> docker.DockerClient:
        from hubd.stack.engine import connect

        return connect(self.timing.engine_api_timeout_s)

    @cached_property
    def stack(self) -> Stack:
        return Stack(
            self.client,
            self.config,
            reporter=self.reporter,
            timing=self.timing,
            pins=PinStore(self.paths.image_pins_file, self.config.stack_name),
        )

    def daemon(self) -> ControlClient | None:
        """The running daemon's client, or None when no daemon answers. A person without a
        daemon of their own reaches the system service (whose socket `control_group` opens
        to them)."""
        for path in self.control_sockets():
            client = ControlClient(path, self.timing.control_client_timeout_s, self.timing)
            if client.is_available():
                return client
        return None

    def control_sockets(self) -> list[Path]:
        own = self.paths.control_socket
        if default_mode() == "system":
            return [own]
        system = resolve_paths("system", environ={}).control_socket
        return [own] if system == own else [own, system]
