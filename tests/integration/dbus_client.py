"""The panel's side of D-Bus, for tests: a blocking client of a (private) session bus.

`BusClient` calls methods and reads properties as a StatusNotifierItem host does, records
signals, and can serve objects (`FakeNotifications` stands in for a desktop's notification
service and records what it was asked to show). Its asyncio loop runs on its own thread.
"""

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method

CALL_TIMEOUT_S = 10.0


def unwrap(value: Any) -> Any:
    """Plain Python values from dbus-fast's Variants, all the way down."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Signal:
    sender: str
    path: str
    interface: str
    member: str
    body: list[Any]


class BusClient:
    def __init__(self, address: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.signals: list[Signal] = []
        self._lock = threading.Lock()
        self.bus: MessageBus = self._run(self._connect(address))

    async def _connect(self, address: str) -> MessageBus:
        bus = await MessageBus(bus_address=address, bus_type=BusType.SESSION).connect()
        bus.add_message_handler(self._record)
        return bus

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT_S)

    def _record(self, message: Message) -> None:
        if message.message_type == MessageType.SIGNAL:
            with self._lock:
                self.signals.append(
                    Signal(
                        message.sender or "",
                        message.path or "",
                        message.interface or "",
                        message.member or "",
                        list(message.body),
                    )
                )

    def seen(self, member: str, sender: str | None = None) -> list[Signal]:
        with self._lock:
            return [s for s in self.signals if s.member == member and sender in (None, s.sender)]

    def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> list[Any]:
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
        reply = self._run(self.bus.call(message))
        if reply.message_type == MessageType.ERROR:
            raise AssertionError(f"{member} failed: {reply.error_name} {reply.body}")
        return list(reply.body)

    def get(self, destination: str, path: str, interface: str, name: str) -> Any:
        body = self.call(
            destination, path, "org.freedesktop.DBus.Properties", "Get", "ss", [interface, name]
        )
        return unwrap(body[0])

    def name_owner(self, name: str) -> str | None:
        try:
            return str(
                self.call(
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "GetNameOwner",
                    "s",
                    [name],
                )[0]
            )
        except AssertionError:
            return None

    def listen(self, rule: str) -> None:
        self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [rule],
        )

    def serve(self, name: str, path: str, interface: ServiceInterface) -> None:
        async def export() -> None:
            self.bus.export(path, interface)
            await self.bus.request_name(name)

        self._run(export())

    def close(self) -> None:
        async def disconnect() -> None:
            self.bus.disconnect()

        self._run(disconnect())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> "BusClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Notification:
    app_name: str
    summary: str
    body: str
    hints: dict[str, Any]


class FakeNotifications(ServiceInterface):
    """org.freedesktop.Notifications that only records what it is asked to show."""

    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.shown: list[Notification] = []

    @dbus_method()
    def Notify(
        self,
        app_name: Annotated[str, DBusSignature("s")],
        replaces_id: Annotated[int, DBusSignature("u")],
        app_icon: Annotated[str, DBusSignature("s")],
        summary: Annotated[str, DBusSignature("s")],
        body: Annotated[str, DBusSignature("s")],
        actions: Annotated[list[str], DBusSignature("as")],
        hints: Annotated[dict[str, Variant], DBusSignature("a{sv}")],
        expire_timeout: Annotated[int, DBusSignature("i")],
    ) -> Annotated[int, DBusSignature("u")]:
        self.shown.append(Notification(app_name, summary, body, unwrap(hints)))
        return len(self.shown)

    @dbus_method()
    def CloseNotification(self, notification_id: Annotated[int, DBusSignature("u")]) -> None:
        pass

    @dbus_method()
    def GetCapabilities(self) -> Annotated[list[str], DBusSignature("as")]:
        return ["body"]

    @dbus_method()
    def GetServerInformation(self) -> Annotated[list[str], DBusSignature("ssss")]:
        return ["fake", "hubd-tests", "1", "1.2"]
