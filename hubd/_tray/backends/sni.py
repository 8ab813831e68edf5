"""A pystray `Icon` that is a StatusNotifierItem on the D-Bus session bus.

Every current Linux panel shows tray icons this way (KDE Plasma, GNOME with the AppIndicator
extension, xfce's Status Tray, LXQt, waybar, swaybar); many no longer show the old X11 kind.
pystray reaches them only through PyGObject, which `pip` cannot build on most systems, so hubd
speaks the protocol itself with `dbus-fast` (pure Python):

- the item (`org.kde.StatusNotifierItem` at /StatusNotifierItem) carries the picture as ARGB32
  pixmaps, the title, the tooltip and a status; it is registered with the
  `org.kde.StatusNotifierWatcher`, and again whenever a watcher (re)appears (a panel that
  starts after the tray, or restarts);
- a left click (`Activate`) runs the menu's default item; the menu itself is exported as
  `com.canonical.dbusmenu` (`hubd._tray.backends.dbusmenu`) and drawn by the panel;
- notifications go to `org.freedesktop.Notifications` on the same connection, and to the
  tooltip when no notification service answers.

The asyncio loop runs on the thread that calls `run()` (the main thread). Changes from other
threads are handed to it in order and not waited for, so a change never hangs on a loop
that is stopping. The loop ends on `stop()` or when the session bus goes away (logout).
"""

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Annotated, Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property
from dbus_fast.service import signal as dbus_signal
from PIL import Image

from hubd._tray.backends import TrayUnavailable, dbusmenu, notifications
from hubd._tray.backends.hosthint import no_tray_host_warning

log = logging.getLogger(__name__)

ITEM_PATH = "/StatusNotifierItem"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
# Hosts pick the pixmap closest to their panel's size; these cover 16 px panels to HiDPI.
# Every reply with the picture carries all of them (19 KB), so no more sizes than needed.
PIXMAP_SIZES_PX = (16, 22, 24, 32, 48)
# dbus-fast (5.2) drops the connection when the socket's send buffer is full (EAGAIN on
# send, inherited from dbus-next: altdesktop/python-dbus-next#153); a panel reading the
# picture several times at once must not get there.
SEND_BUFFER_BYTES = 1 << 20

Pixmaps = list[list[Any]]


def argb_pixmaps(image: Image.Image, sizes: tuple[int, ...] = PIXMAP_SIZES_PX) -> Pixmaps:
    """`image` as the spec's a(iiay): width, height, ARGB32 pixels in network byte order."""
    rgba = image.convert("RGBA")
    pixmaps: Pixmaps = []
    for size in sizes:
        r, g, b, a = rgba.resize((size, size), Image.Resampling.LANCZOS).split()
        pixmaps.append([size, size, Image.merge("RGBA", (a, r, g, b)).tobytes()])
    return pixmaps


class StatusNotifierItem(ServiceInterface):
    """The item's D-Bus face; its values are set by the icon, on the loop thread."""

    def __init__(self, item_id: str, on_activate: Callable[[], None]) -> None:
        super().__init__(ITEM_INTERFACE)
        self.item_id = item_id
        self.on_activate = on_activate
        self.title = ""
        self.status = "Active"
        self.pixmaps: Pixmaps = []
        self.tooltip_note = ""  # the last notification, when no service showed it

    @dbus_property(access=PropertyAccess.READ)
    def Category(self) -> Annotated[str, DBusSignature("s")]:
        return "ApplicationStatus"

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> Annotated[str, DBusSignature("s")]:
        return self.item_id

    @dbus_property(access=PropertyAccess.READ)
    def Title(self) -> Annotated[str, DBusSignature("s")]:
        return self.title

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Annotated[str, DBusSignature("s")]:
        return self.status

    @dbus_property(access=PropertyAccess.READ)
    def WindowId(self) -> Annotated[int, DBusSignature("i")]:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def IconName(self) -> Annotated[str, DBusSignature("s")]:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def IconPixmap(self) -> Annotated[list[Any], DBusSignature("a(iiay)")]:
        return self.pixmaps

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconName(self) -> Annotated[str, DBusSignature("s")]:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconPixmap(self) -> Annotated[list[Any], DBusSignature("a(iiay)")]:
        return []  # hosts then use the icon itself

    @dbus_property(access=PropertyAccess.READ)
    def OverlayIconName(self) -> Annotated[str, DBusSignature("s")]:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def OverlayIconPixmap(self) -> Annotated[list[Any], DBusSignature("a(iiay)")]:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> Annotated[str, DBusSignature("s")]:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def ToolTip(self) -> Annotated[list[Any], DBusSignature("(sa(iiay)ss)")]:
        # No picture: hosts show the icon's. The body holds the last notice when no
        # notification service showed it, until the state changes.
        return ["", [], self.title, self.tooltip_note]

    @dbus_property(access=PropertyAccess.READ)
    def ItemIsMenu(self) -> Annotated[bool, DBusSignature("b")]:
        return False  # a left click opens the hub; the menu is on the right button

    @dbus_property(access=PropertyAccess.READ)
    def Menu(self) -> Annotated[str, DBusSignature("o")]:
        return dbusmenu.MENU_PATH

    @dbus_method()
    def Activate(
        self, x: Annotated[int, DBusSignature("i")], y: Annotated[int, DBusSignature("i")]
    ) -> None:
        self.on_activate()

    @dbus_method()
    def SecondaryActivate(
        self, x: Annotated[int, DBusSignature("i")], y: Annotated[int, DBusSignature("i")]
    ) -> None:
        self.on_activate()

    @dbus_method()
    def ContextMenu(
        self, x: Annotated[int, DBusSignature("i")], y: Annotated[int, DBusSignature("i")]
    ) -> None:
        pass  # hosts draw the exported menu themselves

    @dbus_method()
    def Scroll(
        self,
        delta: Annotated[int, DBusSignature("i")],
        orientation: Annotated[str, DBusSignature("s")],
    ) -> None:
        pass

    @dbus_signal()
    def NewTitle(self) -> None:
        pass

    @dbus_signal()
    def NewIcon(self) -> None:
        pass

    @dbus_signal()
    def NewAttentionIcon(self) -> None:
        pass

    @dbus_signal()
    def NewToolTip(self) -> None:
        pass

    @dbus_signal()
    def NewStatus(self, status: str) -> Annotated[str, DBusSignature("s")]:
        return status


async def _get_watcher_property(bus: MessageBus, name: str) -> Any:
    reply = await bus.call(
        Message(
            destination=WATCHER,
            path=WATCHER_PATH,
            interface="org.freedesktop.DBus.Properties",
            member="Get",
            signature="ss",
            body=[WATCHER, name],
        )
    )
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        return None
    return reply.body[0].value


def session_bus_address() -> str | None:
    """The session bus: as the session says, else systemd's per-user bus (None: no bus)."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):
        return f"unix:path={os.path.join(runtime, 'bus')}"
    return None


async def _connect(address: str) -> MessageBus:
    # Made inside the loop: a MessageBus belongs to the loop running when it is made.
    bus: MessageBus = await MessageBus(bus_address=address).connect()
    return bus


async def _probe_host(address: str) -> bool:
    bus = MessageBus(bus_address=address)
    await bus.connect()
    try:
        return bool(await _get_watcher_property(bus, "IsStatusNotifierHostRegistered"))
    finally:
        bus.disconnect()


def sni_host_present(timeout_s: float) -> bool:
    """Whether the session bus has a StatusNotifierWatcher with a host (a panel) behind it;
    `timeout_s` bounds the wait for the bus to answer."""
    address = session_bus_address()
    if address is None:
        return False
    try:
        return asyncio.run(asyncio.wait_for(_probe_host(address), timeout_s))
    except Exception as exc:  # no bus, a broken bus, a slow bus: not an SNI desktop
        log.debug("no StatusNotifierItem host: %s", exc)
        return False


def sni_icon_class(base: Any, separator: Any, host_wait_s: float) -> Any:
    """A StatusNotifierItem icon class on pystray's base `Icon` class `base`.

    `separator` is pystray's `Menu.SEPARATOR`; `host_wait_s` is how long a tray host has to
    show the icon before the tray warns that nobody does.
    """

    class SniIcon(base):  # type: ignore[misc]
        HAS_DEFAULT_ACTION = True
        HAS_MENU = True
        HAS_MENU_RADIO = False
        HAS_NOTIFICATION = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._loop = asyncio.new_event_loop()
            self._bus: MessageBus = self._connect()
            self._stop_requested = threading.Event()
            self._item = StatusNotifierItem("hubd", self._on_activate)
            self._menu_face = dbusmenu.DBusMenu()
            self._registered = False
            self._host_seen = False
            self._attention = False
            self._tasks: set[asyncio.Task[None]] = set()
            super().__init__(*args, **kwargs)
            self._item.title = str(self.title or self.name)

        # -- the loop

        def _connect(self) -> MessageBus:
            # Here rather than in the loop, so that a missing bus is one clear error at start.
            address = session_bus_address()
            try:
                if address is None:
                    raise RuntimeError("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS)")
                bus: MessageBus = self._loop.run_until_complete(_connect(address))
            except Exception as exc:
                self._loop.close()
                raise TrayUnavailable(
                    f"cannot show a StatusNotifierItem tray icon: {exc}. Start `hubd tray` from "
                    "your desktop session"
                ) from None
            return bus

        def _run(self) -> None:
            try:
                self._loop.run_until_complete(self._serve())
            except Exception as exc:  # the bus refused us: end the tray, with the reason
                log.error("tray: the StatusNotifierItem icon failed: %s", exc)
                self._stop_requested.set()
                if not getattr(self, "_loop_thread", None):
                    self._mark_ready()  # lets pystray's setup thread finish
            finally:
                self._loop.close()

        async def _serve(self) -> None:
            bus = self._bus
            sock = getattr(bus, "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            bus.export(ITEM_PATH, self._item)
            bus.export(dbusmenu.MENU_PATH, self._menu_face)
            self._item_service = f"org.kde.StatusNotifierItem-{os.getpid()}-1"
            await bus.request_name(self._item_service)
            bus.add_message_handler(self._on_bus_message)
            await self._add_match(
                f"type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                f"arg0='{WATCHER}'"
            )
            self._mark_ready()
            stop = self._loop.create_task(asyncio.to_thread(self._stop_requested.wait))
            gone = self._loop.create_task(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
            self._loop.call_later(host_wait_s, self._check_shown)
            await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not gone.done():
                bus.disconnect()
                with contextlib.suppress(Exception):
                    await gone
            else:
                with contextlib.suppress(Exception):
                    gone.result()  # logout: the bus went away; that ends the tray cleanly
                log.info("tray: the session bus went away")
            self._stop_requested.set()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(stop, *self._tasks, return_exceptions=True)

        def _stop(self) -> None:
            self._stop_requested.set()

        def _on_loop(self, action: Callable[[], None]) -> None:
            """Run `action` on the loop thread, in order; never waits, never raises."""
            if self._loop.is_closed() or self._stop_requested.is_set():
                return
            try:
                if threading.current_thread() is getattr(self, "_loop_thread", None):
                    action()
                else:
                    self._loop.call_soon_threadsafe(self._guarded, action)
            except RuntimeError:  # the loop closed meanwhile
                pass

        @staticmethod
        def _guarded(action: Callable[[], None]) -> None:
            try:
                action()
            except Exception:
                log.exception("tray: updating the icon failed")

        def _mark_ready(self) -> None:
            self._loop_thread = threading.current_thread()
            super()._mark_ready()

        # -- registration with the watcher (the panel side)

        async def _add_match(self, rule: str) -> None:
            await self._bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=[rule],
                )
            )

        def _on_bus_message(self, message: Message) -> None:
            if (
                message.member == "NameOwnerChanged"
                and message.body
                and message.body[0] == WATCHER
                and message.body[2]
                and self.visible
            ):
                self._spawn(self._register())  # a (new) panel: show up there

        async def _register(self) -> None:
            bus = self._bus
            if not bus.connected:
                return
            reply = await bus.call(
                Message(
                    destination=WATCHER,
                    path=WATCHER_PATH,
                    interface=WATCHER,
                    member="RegisterStatusNotifierItem",
                    signature="s",
                    body=[self._item_service],
                )
            )
            self._registered = reply is not None and reply.message_type == MessageType.METHOD_RETURN
            if self._registered:
                self._host_seen = bool(
                    await _get_watcher_property(bus, "IsStatusNotifierHostRegistered")
                )
            log.debug("tray: registered=%s host=%s", self._registered, self._host_seen)

        def _check_shown(self) -> None:
            async def check() -> None:
                if not self._host_seen:
                    await self._register()  # a host may have come meanwhile
                if not (self._registered and self._host_seen):
                    log.warning("%s", no_tray_host_warning(host_wait_s))

            if not self._stop_requested.is_set():
                self._spawn(check())

        # -- what pystray asks of a backend

        def _show(self) -> None:
            def show() -> None:
                self._set_status(self._shown_status())
                self._spawn(self._register())

            self._on_loop(show)

        def _hide(self) -> None:
            def hide() -> None:
                self._set_status("Passive")

            self._on_loop(hide)

        @property
        def needs_attention(self) -> bool:
            return self._attention

        @needs_attention.setter
        def needs_attention(self, value: bool) -> None:
            self._attention = value

            def update() -> None:
                if self._item.status != "Passive":
                    self._set_status(self._shown_status())

            self._on_loop(update)

        def _shown_status(self) -> str:
            return "NeedsAttention" if self._attention else "Active"

        def _set_status(self, status: str) -> None:
            if self._item.status != status:
                self._item.status = status
                self._item.NewStatus(status)

        def _update_icon(self) -> None:
            pixmaps = argb_pixmaps(self.icon)
            self._icon_valid = True

            def update() -> None:
                self._item.pixmaps = pixmaps
                self._item.NewIcon()

            self._on_loop(update)

        def _update_title(self) -> None:
            title = str(self.title)

            def update() -> None:
                self._item.title = title
                self._item.tooltip_note = ""
                self._item.NewTitle()
                self._item.NewToolTip()

            self._on_loop(update)

        def _update_menu(self) -> None:
            # Evaluated here, on the caller's thread, as the menu's callables expect.
            entries = dbusmenu.flatten(self.menu, separator, self._activate_item)
            self._on_loop(lambda: self._menu_face.replace(entries))

        def _notify(self, message: str, title: str | None = None) -> None:
            picture = self.icon
            heading = title or str(self.title)

            async def send() -> None:
                bus = self._bus
                if not bus.connected:
                    return
                if await notifications.send(bus, heading, message, picture) is None:
                    # No notification service: the notice waits in the tooltip instead.
                    self._item.tooltip_note = f"{heading}: {message}"
                    with contextlib.suppress(Exception):
                        self._item.NewToolTip()

            self._on_loop(lambda: self._spawn(send()))

        def _spawn(self, coroutine: Any) -> None:
            task = self._loop.create_task(coroutine)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

        def _task_done(self, task: "asyncio.Task[None]") -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                # The bus going away mid-call (logout): nothing left to tell anyone.
                log.debug("tray: D-Bus call failed: %s", task.exception())

        def _remove_notification(self) -> None:
            pass  # notices expire on their own; closing them at exit only risks errors

        # -- clicks (on the loop thread: the actions return at once)

        def _on_activate(self) -> None:
            try:
                self()
            except Exception:
                log.exception("tray: the click action failed")

        def _activate_item(self, item: Any) -> None:
            item(self)

    return SniIcon
