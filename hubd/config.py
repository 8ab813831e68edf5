"""hubd's configuration: a typed, frozen object, loaded once.

Built-in defaults, then the TOML file, then `HUBD_<KEY>` environment variables. Every key is
optional; an unknown key, a wrong type or a bad value is refused with the source, the key and
what was expected.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from hubd.codec import decode, describe, field_types, from_text
from hubd.errors import SERVICE_MANAGER_ENV, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_PREFIX = "HUBD_"
# Environment variables with this prefix that are not config keys (the launchd job sets the
# service manager's: taken for an unknown key, it kept hubd from ever starting under launchd).
_NOT_CONFIG_ENV = {"HUBD_CONFIG", "HUBD_TIMING", SERVICE_MANAGER_ENV}

# Passwords: the hub's NativeAuthenticator, `hubd user add` and the tray's dialog all ask for
# at least this many characters.
MIN_PASSWORD_CHARS = 8

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]?$", re.IGNORECASE)
# hubd's node labels (`hubd node label NODE LABEL`): short, safe in a Swarm constraint.
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


def check_port(value: int) -> str | None:
    """None for a TCP/UDP port number, else what was expected (also used by hubd.mdns)."""
    return None if 1 <= value <= 65535 else "a port number from 1 to 65535"


def _check_image(value: str) -> str | None:
    if _IMAGE_RE.match(value):
        return None
    return "an image reference such as 'quay.io/jupyter/base-notebook:latest'"


def _check_images(value: tuple[str, ...]) -> str | None:
    bad = [v for v in value if _check_image(v)]
    return f"a list of image references (bad: {bad[0]!r})" if bad else None


def check_node_label(value: str) -> str | None:
    """None for a hubd node label (`hubd node label NODE LABEL`), else what was expected."""
    if _LABEL_RE.match(value):
        return None
    return "lowercase letters, digits, '-' and '_' (e.g. 'gpu')"


def image_node_labels(entries: Iterable[str]) -> dict[str, str]:
    """`image_nodes` as image -> label."""
    return {image: label for image, _, label in (e.rpartition("=") for e in entries)}


def _check_image_nodes(value: tuple[str, ...]) -> str | None:
    for item in value:
        image, sep, label = item.rpartition("=")
        if not sep or _check_image(image) or check_node_label(label):
            return f"a list of 'IMAGE=LABEL' entries, e.g. 'lab/gpu-notebook:1=gpu' (bad: {item!r})"
    return None


def check_dns_label(value: str) -> str | None:
    """None for one lowercase DNS label, else what was expected (also used by hubd.mdns)."""
    if _NAME_RE.match(value):
        return None
    return "lowercase letters, digits and '-' (a DNS label, e.g. 'jupyter')"


def _check_memory(value: str | None) -> str | None:
    ok = value is None or _MEMORY_RE.match(value)
    return None if ok else "a memory size such as '2G' or '512M'"


def _check_cpus(value: float | None) -> str | None:
    return None if value is None or 0 < value <= 1024 else "a number of CPUs above 0, e.g. 1.5"


def _check_positive(value: int) -> str | None:
    return None if value >= 0 else "a number of seconds, 0 or more (0 switches culling off)"


# Folders whose whole tree belongs to the system: none of them, nor anything inside, is mounted
# into people's containers.
_SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/usr", "/var/lib/docker", "/var/run", "/System", "/Library",
    "/private/etc", "/private/var",
)  # fmt: skip
# Folders that hold everybody's (or the system's) things: refused themselves, fine below.
_SHARED_ROOTS = ("/", "/home", "/var", "/opt", "/srv", "/mnt", "/media", "/tmp", "/Users")


def docker_socket_candidates(environ: Mapping[str, str] | None = None) -> list[str]:
    """Where a Docker socket may live on this machine (engine, rootless, Docker Desktop)."""
    environ = os.environ if environ is None else environ
    found = ["/var/run/docker.sock", "/run/docker.sock", "~/.docker/run/docker.sock"]
    host = environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        found.append(host[len("unix://") :])
    if environ.get("XDG_RUNTIME_DIR"):
        found.append(os.path.join(environ["XDG_RUNTIME_DIR"], "docker.sock"))
    return [os.path.realpath(os.path.expanduser(p)) for p in found]


def shared_folder_path(value: str) -> str:
    """The folder a `shared_folder` value means: `~` expanded, symlinks resolved."""
    return os.path.realpath(os.path.expanduser(value))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _check_folder(value: str | None) -> str | None:
    if value is None:
        return None
    if not os.path.isabs(os.path.expanduser(value)):
        return "an absolute path to a folder on this machine"
    path = shared_folder_path(value)
    if not os.path.isdir(path):
        return "an existing folder on this machine (create it first)"
    if path in _SHARED_ROOTS or any(_within(path, tree) for tree in _SYSTEM_TREES):
        return "a folder of your own to share, not a system folder"
    sockets = [s for s in docker_socket_candidates() if _within(s, path) and os.path.exists(s)]
    if sockets:
        return f"a folder that does not hold the Docker socket ({sockets[0]})"
    return None


def _check_network_block(value: str) -> str | None:
    """'auto' or a private IPv4 range that holds at least two /29 subnets."""
    import ipaddress

    if value == "auto":
        return None
    try:
        block = ipaddress.IPv4Network(value)
    except ValueError:
        block = None
    if block is None or not block.is_private or block.prefixlen > 28 or block.prefixlen < 8:
        return "'auto' or a private IPv4 range from /8 to /28, e.g. '10.200.0.0/16'"
    return None


def _check_seconds(value: int) -> str | None:
    return None if value >= 0 else "a number of seconds, 0 or more (0 switches it off)"


def _check_count(value: int) -> str | None:
    return None if value >= 0 else "a count, 0 or more"


def _check_address(value: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "an IP address to listen on, e.g. '0.0.0.0' (all) or '127.0.0.1' (this machine only)"
    return None


AUTO_UPGRADE_MODES = ("off", "check", "install")
TLS_MODES = ("auto", "off")


def _check_tls(value: str) -> str | None:
    return None if value in TLS_MODES else "one of 'auto' (hubd's own CA) or 'off'"


def _check_https_port(value: int) -> str | None:
    return None if value == 0 else check_port(value)


def _check_pem_file(value: str | None) -> str | None:
    if value is None:
        return None
    path = os.path.expanduser(value)
    return None if os.path.isabs(path) and os.path.isfile(path) else "an existing PEM file"


_WINDOW_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-3]):([0-5]\d)$")


def _check_upgrade_window(text: str) -> str | None:
    if not _WINDOW_RE.match(text.strip()):
        return "a local time range such as '03:00-05:00' (it may pass midnight: '23:30-01:00')"
    start, end = parse_window(text)
    return "a window whose start and end differ" if start == end else None


def parse_window(text: str) -> tuple[time, time]:
    match = _WINDOW_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a time window: {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return time(h1, m1), time(h2, m2)


def _check_auto_upgrade(value: str) -> str | None:
    return None if value in AUTO_UPGRADE_MODES else "one of 'off', 'check', 'install'"


def _key(default: Any, help: str, check: Callable[[Any], str | None] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class Config:
    """Every key, its default, help and check. Really frozen: lists are tuples (a list given
    to the constructor becomes one), so a Config is hashable and nobody appends to it."""

    port: int = _key(8000, "Port on this machine where the hub answers.", check_port)
    bind_address: str = _key("0.0.0.0", "Address the hub port listens on.", _check_address)
    tls: str = _key(
        "auto",
        "HTTPS: 'auto' (a certificate from hubd's own CA, which can vouch for this hub only; "
        "`port` then serves a page that sends devices on to HTTPS or shows how to trust it) "
        "or 'off' (plain HTTP on `port`, e.g. behind your own reverse proxy).",
        _check_tls,
    )
    https_port: int = _key(
        0,
        "Port where the hub answers over HTTPS (0: 443 where free, else 8443).",
        _check_https_port,
    )
    tls_cert: str | None = _key(
        None, "Your own certificate (PEM, full chain) instead of hubd's CA.", _check_pem_file
    )
    tls_key: str | None = _key(None, "The key of tls_cert (PEM).", _check_pem_file)
    user_image: str = _key(
        "quay.io/jupyter/base-notebook:latest",
        "Image every user's JupyterLab runs in.",
        _check_image,
    )
    allowed_images: tuple[str, ...] = _key(
        (),
        "If set, users pick one of these images when they start a server.",
        _check_images,
    )
    image_nodes: tuple[str, ...] = _key(
        (),
        "On a Swarm of several machines: 'IMAGE=LABEL' entries; servers from IMAGE run only on "
        "nodes with hubd's label LABEL (`hubd node label NODE LABEL`), e.g. a GPU image.",
        _check_image_nodes,
    )
    gpu_images: tuple[str, ...] = _key(
        (),
        "Images whose servers get the machine's GPUs (Docker's NVIDIA runtime; on a Swarm they "
        "start only on a node whose engine advertises the generic resource NVIDIA-GPU).",
        _check_images,
    )
    hub_base_image: str = _key(
        "quay.io/jupyterhub/jupyterhub:latest",
        "Official JupyterHub image that hubd's hub image is built on.",
        _check_image,
    )
    proxy_image: str = _key(
        "quay.io/jupyterhub/configurable-http-proxy:4.6.3",
        "configurable-http-proxy image, run in front of the hub and users' servers.",
        _check_image,
    )
    cull_idle_timeout: int = _key(
        3600,
        "Seconds of inactivity after which a user's server is stopped (0: never).",
        _check_positive,
    )
    mem_limit: str | None = _key(
        None,
        "Memory limit per user server, e.g. '2G' (not set: a quarter of the engine's memory, "
        "at least 1 GiB, at most 8 GiB).",
        _check_memory,
    )
    cpu_limit: float | None = _key(None, "CPU limit per user server, e.g. 1.5.", _check_cpus)
    user_network_block: str = _key(
        "auto",
        "Private IPv4 range people's networks take their small subnets (/29) from, e.g. "
        "'10.200.0.0/16' (8192 networks); 'auto': a free /16 in 10.0.0.0/8 that hubd picks.",
        _check_network_block,
    )
    concurrent_spawn_limit: int = _key(
        0,
        "Servers starting at the same time; further people wait (0: from the machine's CPUs).",
        _check_count,
    )
    active_server_limit: int = _key(
        0,
        "Servers running at the same time; further people are asked to come back (0: from the "
        "machine's memory and what each server is promised: mem_limit if set, else 1 GiB).",
        _check_count,
    )
    shared_folder: str | None = _key(
        None,
        "Host folder mounted into every user's server at ~/shared (opt-in; an existing folder "
        "of your own, not a system folder).",
        _check_folder,
    )
    shared_folder_readonly: bool = _key(True, "Mount the shared folder read-only.")
    user_work_dir: str = _key(
        "/home/jovyan/work",
        "Folder inside the user's server where their volume is mounted.",
    )
    mdns_enabled: bool = _key(True, "Advertise the hub on the local network over mDNS.")
    mdns_name: str = _key(
        "jupyter", "mDNS host name: the hub is http://<name>.local:<port>/.", check_dns_label
    )
    mdns_interfaces: tuple[str, ...] = _key(
        (), "Network interfaces to advertise on (empty: all LAN)."
    )
    mdns_ipv6: bool = _key(True, "Also advertise IPv6 addresses.")
    stop_on_exit: bool = _key(
        False,
        "Stop the hub when `hubd run` exits (default: leave it and users' servers running).",
    )
    control_group: str | None = _key(
        None,
        "Group whose members may use the control socket of the system service.",
    )
    auto_upgrade: str = _key(
        "off",
        "Newer images in the maintenance window: 'off', 'check' (tell), 'install' (upgrade).",
        _check_auto_upgrade,
    )
    upgrade_window: str = _key(
        "03:00-05:00",
        "Maintenance window for `auto_upgrade`, local time (may pass midnight).",
        _check_upgrade_window,
    )
    stack_name: str = _key(
        "hubd",
        "Prefix of every Docker object hubd creates; lets two stacks share an engine.",
        check_dns_label,
    )
    backup_target: str | None = _key(
        None,
        "Folder that backups go to (a USB disk, a mounted NAS); unset: no scheduled backups.",
        _check_folder,
    )
    backup_interval: int = _key(
        86400, "Seconds between scheduled backups (0: only `hubd backup`).", _check_seconds
    )
    backup_warn_after: int = _key(
        172800,
        "Warn in the tray and status when no backup succeeded for this many seconds (0: never).",
        _check_seconds,
    )
    backup_keep_daily: int = _key(
        7, "Daily backups kept (restic forget --keep-daily).", _check_count
    )
    backup_keep_weekly: int = _key(4, "Weekly backups kept.", _check_count)
    backup_keep_monthly: int = _key(12, "Monthly backups kept.", _check_count)
    backup_image: str = _key(
        "restic/restic:0.17.3", "Image of the restic helper container.", _check_image
    )

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_keys() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Config)}


def _coerce(key: str, kind: Any, value: Any, source: str) -> Any:
    """Check a TOML value against the field's type (a list becomes a tuple)."""
    ok, decoded = decode(kind, value, strict=True)
    if not ok:
        raise ConfigError(f"{source}: key '{key}': expected {describe(kind)}, got {value!r}")
    return decoded


def _from_env_text(key: str, kind: Any, text: str, source: str) -> Any:
    """Turn an environment variable's text into the field's type."""
    try:
        return from_text(kind, text)
    except ValueError:
        raise ConfigError(
            f"{source}: expected {describe(kind)} for '{key}', got {text.strip()!r}"
        ) from None


def _validate(key: str, value: Any, source: str) -> None:
    check = config_keys()[key].metadata["check"]
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{source}: key '{key}': expected {problem}, got {value!r}")


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    keys = config_keys()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in keys:
            raise ConfigError(f"{path}: unknown key '{key}' (known keys: {', '.join(keys)})")
        values[key] = _coerce(key, field_types(Config)[key], value, str(path))
    return values


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    keys = config_keys()
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_CONFIG_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in keys:
            raise ConfigError(f"environment variable {name}: '{key}' is not a config key")
        values[key] = _from_env_text(
            key, field_types(Config)[key], text, f"environment variable {name}"
        )
    return values


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the file at `path` (if it exists), then HUBD_* variables."""
    environ = os.environ if environ is None else environ
    from_file = read_config_file(path)
    from_env = read_environment(environ)
    for key, value in from_file.items():
        _validate(key, value, str(path))
    for key, value in from_env.items():
        _validate(key, value, f"environment variable {ENV_PREFIX}{key.upper()}")
    values = {**from_file, **from_env}
    if values.get("shared_folder"):
        values["shared_folder"] = shared_folder_path(values["shared_folder"])
    config = Config(**values)
    _warn_about(config)
    return config


def _warn_about(config: Config) -> None:
    folder = config.shared_folder
    if folder and not config.shared_folder_readonly and folder == shared_folder_path("~"):
        log.warning(
            "shared_folder is your home folder %s and writable: everybody with an account can "
            "read and change all your files; share a subfolder, or set shared_folder_readonly",
            folder,
        )


def render_toml(config: Config) -> str:
    """The effective config as TOML, with each key's help as a comment."""
    lines = []
    for key, fld in config_keys().items():
        value = getattr(config, key)
        lines.append(f"# {fld.metadata['help']}")
        if value is None:
            lines.append(f"# {key} = (not set)")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    import json

    return json.dumps(value)


def parse_setting(key: str, text: str, source: str = "config set") -> Any:
    """A value for `key` from its text on the command line (as in a HUBD_<KEY> variable),
    checked against the key's type and its rules; ConfigError says what was expected."""
    keys = config_keys()
    if key not in keys:
        import difflib

        close = difflib.get_close_matches(key, list(keys), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else " (`hubd config show` lists them)"
        raise ConfigError(f"{source}: '{key}' is not a config key{hint}")
    value = _from_env_text(key, field_types(Config)[key], text, source)
    _validate(key, value, source)
    return value
