"""Start hubd at boot: one base (`_base`) and one backend per service manager, picked here.

Shaped like pystray's backends: `systemd` and `launchd` import only `_base`; this module is the
only place that knows them both, and imports each only when it is picked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from hubd.errors import ServiceManagerError, UsageError
from hubd.paths import Mode
from hubd.service._base import (
    Activity,
    CommandResult,
    HubdCommand,
    Runner,
    ServiceFile,
    ServiceManager,
    ServiceStatus,
    Target,
    check_hubd_command,
    command_runner,
    fill_placeholders,
    find_hubd_command,
    is_root,
    read_template,
    run_command,
    templates_location,
)

__all__ = [
    "MANAGER_NAMES",
    "Activity",
    "CommandResult",
    "HubdCommand",
    "Runner",
    "ServiceFile",
    "ServiceManager",
    "ServiceStatus",
    "Target",
    "check_hubd_command",
    "command_runner",
    "fill_placeholders",
    "find_hubd_command",
    "installed_daemon",
    "installed_modes",
    "is_root",
    "login_items",
    "manager_name_for",
    "read_template",
    "run_command",
    "service_manager",
    "templates_location",
]


MANAGER_NAMES = ("systemd", "launchd")


def manager_name_for(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform == "darwin":
        return "launchd"
    if platform.startswith("linux"):
        return "systemd"
    raise ServiceManagerError(
        f"`hubd service` knows systemd (Linux) and launchd (macOS), not this platform "
        f"({platform}): run `hubd run` under your own service manager"
    )


def service_manager(target: Target, name: str | None = None) -> ServiceManager:
    name = name or manager_name_for()
    # Imported here: only the backend in use is loaded.
    if name == "systemd":
        from hubd.service.systemd import Systemd

        return Systemd(target)
    if name == "launchd":
        from hubd.service.launchd import Launchd

        return Launchd(target)
    raise UsageError(f"unknown service manager {name!r} (known: {', '.join(MANAGER_NAMES)})")


def installed_daemon(
    environ: Mapping[str, str] | None = None, name: str | None = None
) -> ServiceManager | None:
    """The service manager holding hubd's installed daemon (the user's first), or None: what
    the tray's "Start hubd" starts."""
    if name is None and not (sys.platform == "darwin" or sys.platform.startswith("linux")):
        return None
    for mode in ("user", "system"):
        target = Target(mode) if environ is None else Target(mode, environ=environ)
        manager = service_manager(target, name)
        if target.on_disk(manager.destinations()[0]).exists():
            return manager
    return None


def login_items(
    environ: Mapping[str, str] | None = None, name: str | None = None
) -> ServiceManager:
    """The service manager that starts this user's tray at login (the tray's "Start at
    login"), whether or not `hubd service install` was run."""
    target = Target("user") if environ is None else Target("user", environ=environ)
    return service_manager(target, name)


def installed_modes(make_target: Callable[[Mode], Target], name: str | None = None) -> list[Mode]:
    """The modes in which hubd's service files are present."""
    modes: list[Mode] = ["system", "user"]
    return [mode for mode in modes if service_manager(make_target(mode), name).installed_files()]
