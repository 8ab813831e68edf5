"""The tray menu as data: which items exist for a snapshot, their labels and whether they work.

Pure, so that every daemon state's menu can be checked without a display. `to_pystray` turns
the specs into pystray objects (the module is passed in: nothing here imports pystray), and
`hubd._tray.windows.popup` draws the same specs for tray hosts that have no menus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hubd._tray.state import Snapshot, TrayState
from hubd.status import HubState


class Action:
    """The ids of what menu items do; `hubd.tray` carries them out."""

    OPEN = "open"
    ADDRESS = "address"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    ADD_USER = "add-user"
    LOGS = "logs"
    BACKUP = "backup"
    HOW_TO_START = "how-to-start"
    UPGRADE = "upgrade"
    COPY_ADDRESS = "copy-address"
    START_DAEMON = "start-daemon"
    START_AT_LOGIN = "start-at-login"
    # Per person: "unlock:NAME", "password:NAME" (`user_action`, `split_action`).
    UNLOCK = "unlock"
    NEW_PASSWORD = "password"
    QUIT = "quit"


def user_action(kind: str, name: str) -> str:
    """The action id of KIND (Action.UNLOCK, Action.NEW_PASSWORD) for the person NAME."""
    return f"{kind}:{name}"


def split_action(action: str) -> tuple[str, str | None]:
    """An action id as (kind, the person's name or None)."""
    kind, sep, name = action.partition(":")
    return (kind, name) if sep else (action, None)


@dataclass(frozen=True)
class DesktopFacts:
    """What the tray knows about this desktop and machine, beside the daemon's status."""

    # `hubd service install` put a daemon under the service manager: "Start hubd" can start it.
    service_installed: bool = False
    # Whether the tray starts at this user's login; None: not something this system does.
    starts_at_login: bool | None = None
    # Something can put text on the clipboard (xclip, wl-copy, pbcopy... or Tk).
    can_copy: bool = True


@dataclass(frozen=True)
class ItemSpec:
    label: str
    action: str | None = None  # None: an item that only informs
    enabled: bool = True
    checked: bool | None = None  # None: not checkable
    default: bool = False  # the action of a click on the icon
    children: tuple[ItemSpec, ...] = field(default_factory=tuple)

    @property
    def is_separator(self) -> bool:
        return self.label == SEPARATOR.label and self.action is None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "action": self.action,
            "enabled": self.enabled,
            "checked": self.checked,
            "default": self.default,
            "children": [c.to_json() for c in self.children],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemSpec:
        return cls(
            label=str(data["label"]),
            action=data.get("action"),
            enabled=bool(data.get("enabled", True)),
            checked=data.get("checked"),
            default=bool(data.get("default", False)),
            children=tuple(cls.from_json(c) for c in data.get("children", [])),
        )


SEPARATOR = ItemSpec("----")

_HUB_STATES_THAT_CAN_RESTART = (HubState.RUNNING, HubState.FAILING)


def build_menu(snapshot: Snapshot, desktop: DesktopFacts | None = None) -> list[ItemSpec]:
    """The menu for this snapshot, top to bottom."""
    desktop = desktop or DesktopFacts()
    reachable = snapshot.reachable
    running = snapshot.look is TrayState.RUNNING
    url = snapshot.hub_url
    logs_possible = reachable or snapshot.log_file_readable
    items = [ItemSpec(snapshot.headline, enabled=False)]
    if snapshot.update_available:
        # Offered while the hub runs: the upgrade's health gate compares with a working hub.
        items.append(ItemSpec("Update available: upgrade now…", Action.UPGRADE, enabled=running))
    items += [
        SEPARATOR,
        # Offered only while the hub answers: opening a stopped hub shows a browser error.
        ItemSpec(
            "Open JupyterHub", Action.OPEN, enabled=running and url is not None, default=reachable
        ),
        ItemSpec(
            "Show address for phones and tablets",
            Action.ADDRESS,
            enabled=reachable and url is not None,
        ),
        *_copy_items(snapshot, desktop),
        SEPARATOR,
        ItemSpec("Start", Action.START, enabled=reachable and not snapshot.wanted),
        ItemSpec("Stop", Action.STOP, enabled=reachable and snapshot.wanted),
        ItemSpec(
            "Restart",
            Action.RESTART,
            enabled=reachable and snapshot.raw_state in _HUB_STATES_THAT_CAN_RESTART,
        ),
        SEPARATOR,
        # Accounts live in the running hub: the daemon cannot add one while it is down.
        ItemSpec("Add user…", Action.ADD_USER, enabled=running),
        _users_item(snapshot),
        *_machines_items(snapshot),
        SEPARATOR,
        ItemSpec(snapshot.backup.words, enabled=False),
        ItemSpec(
            "Back up now",
            Action.BACKUP,
            enabled=reachable and snapshot.backup.configured and not snapshot.backup.running,
        ),
        SEPARATOR,
        *_details_items(snapshot),
        ItemSpec("Open logs", Action.LOGS, enabled=logs_possible),
    ]
    if not reachable:
        if desktop.service_installed:
            # Through the service manager that `hubd service install` set up.
            items.append(ItemSpec("Start hubd", Action.START_DAEMON, default=True))
        items.append(
            ItemSpec(
                "How to start hubd…", Action.HOW_TO_START, default=not desktop.service_installed
            )
        )
    items.append(SEPARATOR)
    if desktop.starts_at_login is not None:
        items.append(
            ItemSpec("Start at login", Action.START_AT_LOGIN, checked=desktop.starts_at_login)
        )
    items.append(ItemSpec("Quit tray", Action.QUIT))
    return items


def _copy_items(snapshot: Snapshot, desktop: DesktopFacts) -> list[ItemSpec]:
    """The hub's address, to copy for a message or another browser."""
    url = snapshot.hub_url
    if not snapshot.reachable or url is None:
        return []
    return [ItemSpec(f"Copy address: {url}", Action.COPY_ADDRESS, enabled=desktop.can_copy)]


def _details_items(snapshot: Snapshot) -> list[ItemSpec]:
    """Details that explain what people may see: images they cannot start, and whether their
    kernels survive a restart of Docker."""
    if not snapshot.reachable:
        return []
    rows = [ItemSpec(f"Problem: {problem}", enabled=False) for problem in snapshot.image_problems]
    live = snapshot.live_restore
    if live is not None:
        rows.append(
            ItemSpec(
                "Docker live-restore: on (servers keep running when Docker restarts)"
                if live
                else "Docker live-restore: off (a Docker restart stops everyone's servers)",
                enabled=False,
            )
        )
    if not rows:
        return []
    count = len(snapshot.image_problems)
    title = f"Details ({count} problem{'s' if count > 1 else ''})" if count else "Details"
    return [ItemSpec(title, children=tuple(rows))]


def _users_item(snapshot: Snapshot) -> ItemSpec:
    if not snapshot.reachable:
        return ItemSpec("Users", enabled=False)
    if snapshot.users is None:
        return ItemSpec(
            "Users", children=(ItemSpec("(not available while the hub is down)", enabled=False),)
        )
    if not snapshot.users:
        return ItemSpec("Users", children=(ItemSpec("(no users yet)", enabled=False),))
    hub_up = snapshot.look is TrayState.RUNNING  # accounts live in the running hub
    rows = []
    for user in snapshot.users:
        label = user.name + (" (admin)" if user.admin else "")
        label += " — server running" if user.server_running else ""
        # What the owner can do for someone who cannot sign in: lift a lockout (by a typo or
        # by a stranger trying passwords), set a new password.
        actions = (
            ItemSpec("Unlock", user_action(Action.UNLOCK, user.name), enabled=hub_up),
            ItemSpec("New password…", user_action(Action.NEW_PASSWORD, user.name), enabled=hub_up),
        )
        # The check mark says whose server runs.
        rows.append(ItemSpec(label, checked=user.server_running, children=actions))
    return ItemSpec(f"Users ({len(rows)})", children=tuple(rows))


def _machines_items(snapshot: Snapshot) -> list[ItemSpec]:
    """On a hub of several machines (`hubd node`): each one, its state and who lives there.
    Nothing on one machine."""
    nodes = snapshot.nodes
    if not nodes:
        return []
    rows = []
    for node in nodes:
        active = node.availability in ("", "active")
        state = node.state if active or not node.ready else "paused for maintenance"
        label = f"{node.hostname}{' (this machine)' if node.this_machine else ''} — {state}"
        if node.homes:
            label += " — home of " + ", ".join(node.homes)
        # Informative only; the check mark says the machine is there.
        rows.append(ItemSpec(label, enabled=False, checked=node.ready))
    down = sum(1 for node in nodes if not node.ready)
    title = f"Machines ({len(nodes)}{f', {down} down' if down else ''})"
    return [ItemSpec(title, children=tuple(rows))]


def find_item(specs: list[ItemSpec], action: str) -> ItemSpec | None:
    for spec in specs:
        if spec.action == action:
            return spec
        found = find_item(list(spec.children), action)
        if found is not None:
            return found
    return None


def default_action(specs: list[ItemSpec]) -> str | None:
    """What a click on the icon does on hosts without menus (None: nothing useful now)."""
    for spec in specs:
        if spec.default and spec.enabled and spec.action is not None:
            return spec.action
    return None


def to_pystray(
    pystray: Any, current: Callable[[], list[ItemSpec]], activate: Callable[[str], None]
) -> Any:
    """A live pystray menu: rebuilt from `current()` whenever the backend asks for it."""

    def make_action(action: str) -> Callable[[Any, Any], None]:
        def on_click(_icon: Any, _item: Any) -> None:
            activate(action)

        return on_click

    def convert(spec: ItemSpec) -> Any:
        if spec.is_separator:
            return pystray.Menu.SEPARATOR
        checked = spec.checked
        if spec.children:
            return pystray.MenuItem(
                spec.label,
                pystray.Menu(*map(convert, spec.children)),
                enabled=spec.enabled,
                checked=None if checked is None else (lambda _item: checked),
            )
        return pystray.MenuItem(
            spec.label,
            make_action(spec.action) if spec.action is not None else None,
            enabled=spec.enabled,
            checked=None if checked is None else (lambda _item: checked),
            default=spec.default,
        )

    def items() -> tuple[Any, ...]:
        return tuple(convert(spec) for spec in current())

    return pystray.Menu(items)


# What opens one of the Tk helper windows (hubd._tray.windows); "Open logs" opens the log file
# with the desktop's application when it can, and needs a window only otherwise.
WINDOW_ACTIONS = (Action.ADDRESS, Action.ADD_USER, Action.HOW_TO_START, Action.NEW_PASSWORD)
NEEDS_TK = " (needs Tk)"


def without_windows(specs: list[ItemSpec], log_file_readable: bool) -> list[ItemSpec]:
    """`specs` with what needs a window greyed out, for a Python without tkinter."""

    def grey(spec: ItemSpec) -> ItemSpec:
        kind = split_action(spec.action)[0] if spec.action is not None else None
        needs_window = kind in WINDOW_ACTIONS or (
            spec.action == Action.LOGS and not log_file_readable
        )
        if needs_window:
            return replace(spec, label=spec.label + NEEDS_TK, enabled=False, default=False)
        if spec.children:
            return replace(spec, children=tuple(map(grey, spec.children)))
        return spec

    return [grey(spec) for spec in specs]
