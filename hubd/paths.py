"""Where hubd keeps its config, state, control socket and logs.

Computed when asked, never at import time. Under systemd the directories it hands us
(`$STATE_DIRECTORY` and friends) win; otherwise platformdirs decides, and as root on Linux
that means the system locations (/etc/xdg/hubd, /var/lib/hubd, /run/hubd, /var/log/hubd).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platformdirs import PlatformDirs

Mode = Literal["user", "system"]
APP_NAME = "hubd"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    state_dir: Path
    runtime_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / "control.sock"

    @property
    def desired_state_file(self) -> Path:
        return self.state_dir / "desired-state.json"

    @property
    def image_pins_file(self) -> Path:
        return self.state_dir / "image-pins.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "hubd.log"


def default_mode() -> Mode:
    return "system" if hasattr(os, "geteuid") and os.geteuid() == 0 else "user"


def _first_of(value: str | None) -> Path | None:
    # systemd passes a colon-separated list when a unit names several directories.
    return Path(value.split(":")[0]) if value else None


def resolve_paths(mode: Mode | None = None, environ: Mapping[str, str] | None = None) -> Paths:
    environ = os.environ if environ is None else environ
    mode = mode or default_mode()
    dirs = PlatformDirs(APP_NAME, appauthor=False, use_site_for_root=(mode == "system"))
    if mode == "system" and sys.platform == "darwin":
        # platformdirs has no system locations on macOS; these are launchd's conventions.
        support = Path("/Library/Application Support") / APP_NAME
        defaults = Paths(
            support, support, Path("/var/run") / APP_NAME, Path("/Library/Logs") / APP_NAME
        )
    elif mode == "system" and default_mode() != "system":
        # Asked for the system locations without being root (e.g. `hubd service install
        # --system --dry-run` or a test): name them explicitly.
        defaults = Paths(
            Path(dirs.site_config_dir),
            Path("/var/lib") / APP_NAME,
            Path("/run") / APP_NAME,
            Path("/var/log") / APP_NAME,
        )
    else:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (cron, su) platformdirs warns and uses /tmp/runtime-UID,
            # which is what we want anyway.
            warnings.simplefilter("ignore")
            runtime_dir = Path(dirs.user_runtime_dir)
        defaults = Paths(
            Path(dirs.user_config_dir),
            Path(dirs.user_state_dir),
            runtime_dir,
            Path(dirs.user_log_dir),
        )
    return Paths(
        config_dir=_first_of(environ.get("CONFIGURATION_DIRECTORY")) or defaults.config_dir,
        state_dir=_first_of(environ.get("STATE_DIRECTORY")) or defaults.state_dir,
        runtime_dir=_first_of(environ.get("RUNTIME_DIRECTORY")) or defaults.runtime_dir,
        log_dir=_first_of(environ.get("LOGS_DIRECTORY")) or defaults.log_dir,
    )
