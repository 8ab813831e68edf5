"""The tray menu exported over D-Bus as `com.canonical.dbusmenu`, for StatusNotifierItem hosts.

The host (the panel) draws the menu itself: it asks for the layout (`GetLayout`), draws it when
the icon is right-clicked, and reports a choice with `Event(id, "clicked")`. The layout comes
from the pystray `Menu` the tray gives its icon, so the menu model stays the one in
`hubd._tray.menu`.

Item ids are positions in the tree (depth first), so an id keeps meaning the same item as
long as the menu keeps its shape. When only labels or enabled states change, hosts are told
with `ItemsPropertiesUpdated`; when the shape changes, with `LayoutUpdated`.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from dbus_fast import Variant
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property
from dbus_fast.service import signal as dbus_signal

log = logging.getLogger(__name__)

INTERFACE = "com.canonical.dbusmenu"
MENU_PATH = "/MenuBar"
ROOT_ID = 0

Props = dict[str, Variant]
Layout = Annotated[list[Any], DBusSignature("(ia{sv}av)")]


@dataclass
class MenuEntry:
    """One item of the exported menu: its D-Bus properties, children, and what a click does."""

    props: Props
    children: list[int] = field(default_factory=list)
    on_click: Callable[[], None] | None = None


def _entry_props(item: Any, separator: Any) -> Props:
    if item is separator:
        return {"type": Variant("s", "separator")}
    props: Props = {
        "label": Variant("s", str(item.text).replace("_", "__")),  # "_" marks a mnemonic
        "enabled": Variant("b", bool(item.enabled)),
    }
    checked = item.checked
    if checked is not None:
        props["toggle-type"] = Variant("s", "checkmark")
        props["toggle-state"] = Variant("i", 1 if checked else 0)
    if item.submenu:
        props["children-display"] = Variant("s", "submenu")
    return props


def flatten(menu: Any, separator: Any, activate: Callable[[Any], None]) -> dict[int, MenuEntry]:
    """The pystray `menu` as a table of entries by id; id 0 is the (invisible) root.

    `separator` is pystray's `Menu.SEPARATOR`; `activate(item)` runs a clicked item's action.
    """
    entries: dict[int, MenuEntry] = {
        ROOT_ID: MenuEntry({"children-display": Variant("s", "submenu")})
    }

    def add(parent: int, items: Any) -> None:
        for item in items:  # a pystray Menu yields its visible items, separators tidied
            entry_id = len(entries)
            entry = MenuEntry(_entry_props(item, separator))
            entries[entry_id] = entry
            entries[parent].children.append(entry_id)
            if item.submenu:
                add(entry_id, item.submenu)
            elif item is not separator and item.enabled:
                entry.on_click = functools.partial(activate, item)

    if menu:
        add(ROOT_ID, menu)
    return entries


def same_shape(a: dict[int, MenuEntry], b: dict[int, MenuEntry]) -> bool:
    return a.keys() == b.keys() and all(
        a[i].children == b[i].children
        and ("type" in a[i].props) == ("type" in b[i].props)
        and ("toggle-type" in a[i].props) == ("toggle-type" in b[i].props)
        for i in a
    )


def _plain(props: Props) -> dict[str, Any]:
    return {key: (value.signature, value.value) for key, value in props.items()}


class DBusMenu(ServiceInterface):
    """`com.canonical.dbusmenu` on the icon's connection; only its loop thread calls it."""

    def __init__(self) -> None:
        super().__init__(INTERFACE)
        self._entries: dict[int, MenuEntry] = {ROOT_ID: MenuEntry({})}
        self._revision = 1

    # -- what the icon calls (on the loop thread)

    def replace(self, entries: dict[int, MenuEntry]) -> None:
        """Show `entries` from now on, and tell the hosts what changed."""
        old, self._entries = self._entries, entries
        if same_shape(old, entries):
            changed = [
                [entry_id, entry.props]
                for entry_id, entry in entries.items()
                if _plain(entry.props) != _plain(old[entry_id].props)
            ]
            if changed:
                self.ItemsPropertiesUpdated(changed, [])
            return
        self._revision += 1
        self.LayoutUpdated(self._revision, ROOT_ID)

    def layout(self, entry_id: int, depth: int = -1) -> list[Any]:
        entry = self._entries[entry_id]
        children = []
        if depth != 0:
            for child in entry.children:
                children.append(Variant("(ia{sv}av)", self.layout(child, depth - 1)))
        return [entry_id, dict(entry.props), children]

    # -- the D-Bus interface

    @dbus_method()
    def GetLayout(
        self,
        parent_id: Annotated[int, DBusSignature("i")],
        recursion_depth: Annotated[int, DBusSignature("i")],
        property_names: Annotated[list[str], DBusSignature("as")],
    ) -> Annotated[list[Any], DBusSignature("u(ia{sv}av)")]:
        if parent_id not in self._entries:
            parent_id = ROOT_ID
        return [self._revision, self.layout(parent_id, recursion_depth)]

    @dbus_method()
    def GetGroupProperties(
        self,
        ids: Annotated[list[int], DBusSignature("ai")],
        property_names: Annotated[list[str], DBusSignature("as")],
    ) -> Annotated[list[Any], DBusSignature("a(ia{sv})")]:
        wanted = ids or list(self._entries)
        names = set(property_names)
        return [
            [i, {k: v for k, v in self._entries[i].props.items() if not names or k in names}]
            for i in wanted
            if i in self._entries
        ]

    @dbus_method()
    def GetProperty(
        self, entry_id: Annotated[int, DBusSignature("i")], name: Annotated[str, DBusSignature("s")]
    ) -> Annotated[Variant, DBusSignature("v")]:
        entry = self._entries.get(entry_id)
        if entry is None or name not in entry.props:
            return Variant("s", "")
        return entry.props[name]

    @dbus_method()
    def Event(
        self,
        entry_id: Annotated[int, DBusSignature("i")],
        event_id: Annotated[str, DBusSignature("s")],
        data: Annotated[Variant, DBusSignature("v")],
        timestamp: Annotated[int, DBusSignature("u")],
    ) -> None:
        self._event(entry_id, event_id)

    @dbus_method()
    def EventGroup(
        self, events: Annotated[list[Any], DBusSignature("a(isvu)")]
    ) -> Annotated[list[int], DBusSignature("ai")]:
        errors = []
        for entry_id, event_id, _data, _timestamp in events:
            if entry_id not in self._entries:
                errors.append(entry_id)
            else:
                self._event(entry_id, event_id)
        return errors

    @dbus_method()
    def AboutToShow(
        self, entry_id: Annotated[int, DBusSignature("i")]
    ) -> Annotated[bool, DBusSignature("b")]:
        return False  # the layout is always current: it is pushed when the state changes

    @dbus_method()
    def AboutToShowGroup(
        self, ids: Annotated[list[int], DBusSignature("ai")]
    ) -> Annotated[list[Any], DBusSignature("aiai")]:
        return [[], [i for i in ids if i not in self._entries]]

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> Annotated[int, DBusSignature("u")]:
        return 3

    @dbus_property(access=PropertyAccess.READ)
    def TextDirection(self) -> Annotated[str, DBusSignature("s")]:
        return "ltr"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Annotated[str, DBusSignature("s")]:
        return "normal"

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> Annotated[list[str], DBusSignature("as")]:
        return []

    @dbus_signal()
    def ItemsPropertiesUpdated(
        self, updated: list[Any], removed: list[Any]
    ) -> Annotated[list[Any], DBusSignature("a(ia{sv})a(ias)")]:
        return [updated, removed]

    @dbus_signal()
    def LayoutUpdated(
        self, revision: int, parent: int
    ) -> Annotated[list[Any], DBusSignature("ui")]:
        return [revision, parent]

    def _event(self, entry_id: int, event_id: str) -> None:
        entry = self._entries.get(entry_id)
        if event_id != "clicked" or entry is None or entry.on_click is None:
            return
        try:
            entry.on_click()
        except Exception:  # a menu action is never worth the icon
            log.exception("tray: menu action failed")
