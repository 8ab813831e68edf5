"""The hub's state in one word, as `hubd status`, the control API and the tray show it."""

from __future__ import annotations

from typing import Any

from hubd.config import Config
from hubd.stack import Stack

RUNNING = "running"
STARTING = "starting"
RESTARTING = "restarting"
FAILING = "failing"
STOPPED = "stopped"
DOCKER_UNAVAILABLE = "docker-unavailable"
STATES = (RUNNING, STARTING, RESTARTING, FAILING, STOPPED, DOCKER_UNAVAILABLE)


def advertised_url(config: Config, hostname: str | None = None) -> str:
    host = hostname or (f"{config.mdns_name}.local" if config.mdns_enabled else None)
    return f"http://{host}:{config.port}/" if host else f"http://localhost:{config.port}/"


def describe_local(stack: Stack, config: Config) -> dict[str, Any]:
    """Status without a daemon: what the engine shows right now."""
    described = stack.describe()
    hub = described["hub"]
    running = hub["status"] == "running"
    state = STOPPED if not running else RUNNING if hub["healthy"] else STARTING
    return {
        "state": state,
        "desired": None,
        "url": advertised_url(config),
        "restart_count": 0,
        "last_error": None if state != STARTING else "the hub does not answer /hub/health",
        "engine": {"live_restore": engine_live_restore(stack)},
        **described,
    }


def engine_live_restore(stack: Stack) -> bool | None:
    try:
        return bool(stack.client.info().get("LiveRestoreEnabled"))
    except Exception:  # unknown is an answer too
        return None
