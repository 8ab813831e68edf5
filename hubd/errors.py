"""The exceptions hubd raises. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import os
import sys

# Exit statuses that mean "fix the config (or the command), then start again": a service manager
# must not retry them. systemd's units list them in RestartPreventExitStatus; under launchd,
# which has no such key, `hubd run` exits 0 for them (KeepAlive's SuccessfulExit=false then
# leaves it stopped). tests/unit/service/test_templates.py keeps the units in step.
FIX_THE_CONFIG_EXIT_CODES = (os.EX_USAGE, os.EX_CONFIG)
# Set in the launchd plists' EnvironmentVariables: hubd runs as a launchd job.
SERVICE_MANAGER_ENV = "HUBD_SERVICE_MANAGER"


class HubdError(Exception):
    """Something the user can act on; the message is one line that says what to do."""

    exit_code = 1


class UsageError(HubdError):
    exit_code = os.EX_USAGE


class ConfigError(HubdError):
    exit_code = os.EX_CONFIG


class EngineAddressError(ConfigError):
    """DOCKER_HOST, the Docker context or the Docker CLI's config names no engine hubd can use.
    A config error: a service manager must not retry it (exit 78, as for a bad hubd config)."""


class DockerUnavailable(HubdError):
    """Docker is not installed, or the engine is not running or not answering."""

    exit_code = os.EX_UNAVAILABLE


class DockerPermissionDenied(HubdError):
    exit_code = os.EX_NOPERM


class PortInUse(HubdError):
    exit_code = os.EX_UNAVAILABLE


class StateFileError(HubdError):
    """hubd could not save its own state (a full disk, a read-only folder)."""

    exit_code = os.EX_CANTCREAT


class ImageError(HubdError):
    """An image could not be pulled or built."""


class StackError(HubdError):
    """The hub stack could not be brought to the wanted state."""


class NoHubContainer(StackError):
    """The stack has no hub container (never created, purged, or being recreated)."""


class HubUnhealthy(StackError):
    """The hub container runs but /hub/health never answered in time."""


class UserAccountError(HubdError):
    """A user operation was refused: bad name, existing user, missing user, bad password."""

    exit_code = os.EX_DATAERR


class NodeError(HubdError):
    """A `hubd node` operation was refused: an unknown node, one that people live on, ..."""

    exit_code = os.EX_DATAERR


class DaemonUnreachable(HubdError):
    """The control socket of `hubd run` is not there or not answering."""

    exit_code = os.EX_UNAVAILABLE


class UntrustedPath(HubdError):
    """A folder or socket hubd would trust is controlled by another local account."""

    exit_code = os.EX_NOPERM


class ControlRequestError(HubdError):
    """The daemon answered a control request with an error."""


class ServiceManagerError(HubdError):
    """systemd/launchd is missing or refused an operation."""

    exit_code = os.EX_UNAVAILABLE


class UntrustedVolume(HubdError):
    """A volume hubd would mount is not a plain one of this stack (labels, driver options)."""


class BackupError(HubdError):
    """A backup or restore failed: no target, wrong password, restic refused, ..."""


class TlsError(HubdError):
    """hubd's CA or certificate cannot be made, read or installed (a bad tls_cert, ...)."""


def error_class_named(name: str) -> type[HubdError]:
    """The HubdError subclass with this name (for errors that crossed the control socket)."""
    pending: list[type[HubdError]] = [HubdError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return ControlRequestError


class DockerRefused(HubdError):
    """The Docker SDK raised something the stack code did not turn into a HubdError."""


def from_foreign(exc: BaseException) -> HubdError | None:
    """A HubdError for an exception of a library hubd uses, or None for a real bug.

    The Docker SDK is only looked at when something already imported it: `import docker.errors`
    loads the whole SDK, which no command should pay for just to be able to fail.
    """
    docker_errors = sys.modules.get("docker.errors")
    if docker_errors is not None and isinstance(exc, docker_errors.DockerException):
        text = str(getattr(exc, "explanation", None) or exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return DockerRefused(f"Docker refused: {first}")
    return None
