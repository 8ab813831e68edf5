"""What the tray knows about the daemon, and how to say it in words.

Pure: a `Snapshot` is one poll of the control API (or the reason it failed); everything else
here derives from it. The daemon's JSON is read through `hubd.status.Status.from_json`, which
tolerates missing or odd keys (an older or newer daemon): that must never take the tray down.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hubd.control import ControlClient
from hubd.errors import HubdError
from hubd.status import DESIRED_STATES, UNKNOWN, BackupStatus, HubState, NodeView, Status

# Windows cuts tray tooltips at 127 characters; other hosts are no more generous in practice.
TOOLTIP_MAX_CHARS = 127


class TrayState(enum.Enum):
    """The five looks of the icon. Several daemon states share one look."""

    RUNNING = "running"
    STARTING = "starting"  # starting, restarting, or a state this tray does not know yet
    FAILING = "failing"  # crash loop, or Docker is not there
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"  # the daemon itself is not answering


_LOOK_OF_STATE = {
    HubState.RUNNING: TrayState.RUNNING,
    HubState.STARTING: TrayState.STARTING,
    HubState.RESTARTING: TrayState.STARTING,
    HubState.FAILING: TrayState.FAILING,
    HubState.DOCKER_UNAVAILABLE: TrayState.FAILING,
    HubState.STOPPED: TrayState.STOPPED,
}

_WORDS_OF_STATE = {
    HubState.RUNNING: "JupyterHub is running",
    HubState.STARTING: "JupyterHub is starting",
    HubState.RESTARTING: "JupyterHub is restarting",
    HubState.FAILING: "JupyterHub keeps crashing",
    HubState.DOCKER_UNAVAILABLE: "Docker is not running",
    HubState.STOPPED: "JupyterHub is stopped",
}

NOT_RUNNING_WORDS = "hubd is not running"


@dataclass(frozen=True)
class UserRow:
    name: str
    admin: bool
    server_running: bool


@dataclass(frozen=True)
class BackupView:
    """What the tray says about backups (from the daemon's `BackupStatus`)."""

    configured: bool = False  # a target is set
    age_s: float | None = None  # since the last good backup
    last_error: str | None = None
    overdue: bool = False
    running: bool = False

    @classmethod
    def of(cls, backup: BackupStatus) -> BackupView:
        return cls(
            configured=bool(backup.target),
            age_s=backup.age_s,
            last_error=backup.last_error or None,
            overdue=backup.overdue,
            running=backup.running,
        )

    @property
    def words(self) -> str:
        """One menu line, e.g. 'Last backup: 3 h ago'."""
        if self.running:
            return "Backing up now…"
        if self.last_error is not None:
            return "Last backup FAILED"
        if self.age_s is None:
            return "No backup yet" if self.configured else "Backups not set up"
        return f"Last backup: {_age_words(self.age_s)} ago" + (" (overdue)" if self.overdue else "")


def _age_words(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


@dataclass(frozen=True)
class Snapshot:
    """One look at the daemon. `status` is None when it could not be reached."""

    status: Status | None = None
    users: tuple[UserRow, ...] | None = None
    error: str | None = None
    # Paths the tray can use without the daemon (the log file is read directly when present).
    log_file_readable: bool = False

    @property
    def reachable(self) -> bool:
        return self.status is not None

    @property
    def raw_state(self) -> str:
        """The daemon's own word for the hub's state, or 'unreachable'."""
        if self.status is None:
            return "unreachable"
        return self.status.state or UNKNOWN

    @property
    def look(self) -> TrayState:
        if self.status is None:
            return TrayState.UNREACHABLE
        known = self.status.known_state
        return _LOOK_OF_STATE[known] if known is not None else TrayState.STARTING

    @property
    def wanted(self) -> bool:
        """Whether the hub is meant to run: the daemon's `desired`, else guessed from the state."""
        if self.status is None:
            return False
        if self.status.desired in DESIRED_STATES:
            return self.status.desired == HubState.RUNNING
        return self.raw_state != HubState.STOPPED

    @property
    def restart_count(self) -> int | None:
        return None if self.status is None else self.status.restart_count

    @property
    def last_error(self) -> str | None:
        return (self.status.last_error or None) if self.status is not None else None

    @property
    def image_problems(self) -> list[str]:
        return list(self.status.image_problems) if self.status is not None else []

    @property
    def live_restore(self) -> bool | None:
        """Whether the engine keeps containers running while it restarts (None: unknown)."""
        return self.status.engine.live_restore if self.status is not None else None

    @property
    def nodes(self) -> tuple[NodeView, ...]:
        """The machines of the hub's Swarm; empty on one machine."""
        return self.status.nodes if self.status is not None else ()

    @property
    def update_available(self) -> bool:
        update = self.status.update if self.status is not None else None
        return update is not None and update.available

    @property
    def hub_url(self) -> str | None:
        """The address to open: the advertised name when there is one, else the local one."""
        if self.status is None:
            return None
        for value in (self.status.url, self.status.local_url):
            if value.startswith(("http://", "https://")):
                return value
        return None

    @property
    def phone_url(self) -> str | None:
        """The address for a new phone or tablet (the QR code): with hubd's CA the plain-HTTP
        page, which sends a device that trusts the hub on to HTTPS and shows one that does
        not how to trust it (docs/https.md); else the hub's address."""
        if self.status is not None and self.status.trust_url.startswith("http://"):
            return self.status.trust_url
        return self.hub_url

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of hubd's root, to compare on a device ("" without one)."""
        return self.status.fingerprint if self.status is not None else ""

    @property
    def address_urls(self) -> list[str]:
        """The phone address with each advertised IP in place of the name.

        Not every phone resolves `.local` names (many Android browsers do not), so the address
        window offers these as a fallback.
        """
        url = self.phone_url
        mdns = self.status.mdns if self.status is not None else None
        if url is None or mdns is None:
            return []
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        result = []
        for address in mdns.addresses:
            if not address:
                continue
            host = f"[{address}]" if ":" in address else address
            result.append(urlunsplit((parts.scheme, host + port, parts.path or "/", "", "")))
        return result

    @property
    def backup(self) -> BackupView:
        return BackupView.of(self.status.backup if self.status is not None else BackupStatus())

    @property
    def headline(self) -> str:
        """The state in a few words, for the tooltip and the menu's first line."""
        if self.status is None:
            return NOT_RUNNING_WORDS
        known = self.status.known_state
        return _WORDS_OF_STATE[known] if known is not None else f"JupyterHub: {self.raw_state}"


def tooltip(snapshot: Snapshot) -> str:
    """The icon's tooltip: the state, and where the hub is when there is an address.

    Plain ASCII: pystray's xorg backend stores it as a Latin-1 window name and fails on
    anything else.
    """
    text = snapshot.headline
    url = snapshot.hub_url
    if url is not None and snapshot.look is not TrayState.UNREACHABLE:
        text = f"{text} - {url}"
    if len(text) > TOOLTIP_MAX_CHARS:
        text = text[: TOOLTIP_MAX_CHARS - 3] + "..."
    return text


def _user_rows(raw: Any) -> tuple[UserRow, ...]:
    rows = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        rows.append(
            UserRow(
                name=item["name"],
                admin=item.get("admin") is True,
                server_running=item.get("server_running") is True,
            )
        )
    return tuple(sorted(rows, key=lambda row: row.name))


def fetch_snapshot(client: ControlClient, log_file_readable: bool = False) -> Snapshot:
    """Ask the daemon for its status and users; never raises for a daemon that is away."""
    try:
        status = client.status()
    except HubdError as exc:
        return Snapshot(error=str(exc), log_file_readable=log_file_readable)
    try:
        users: tuple[UserRow, ...] | None = _user_rows(client.list_users())
    except HubdError:
        # Users live in the hub; a stopped hub may not list them. The status still counts.
        users = None
    return Snapshot(status=status, users=users, log_file_readable=log_file_readable)
