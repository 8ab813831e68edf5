"""Desktop notifications over `org.freedesktop.Notifications`, on the tray icon's connection.

No notification service (a bare window manager, a kiosk, a test bus) is normal: `send`
answers False and the icon shows the notice in its tooltip instead. Nothing here raises.
"""

from __future__ import annotations

import logging

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from PIL import Image

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
APP_NAME = "hubd"
# Notification servers scale the picture; this size reads well in every one tried.
IMAGE_SIZE_PX = 48
# Let the server decide how long a notice stays up.
DEFAULT_TIMEOUT = -1


def image_hint(image: Image.Image) -> Variant:
    """The spec's `image-data` hint (iiibiiay): width, height, stride, alpha, 8 bits, 4 channels."""
    rgba = image.convert("RGBA").resize((IMAGE_SIZE_PX, IMAGE_SIZE_PX), Image.Resampling.LANCZOS)
    width, height = rgba.size
    return Variant("(iiibiiay)", [width, height, width * 4, True, 8, 4, rgba.tobytes()])


async def send(
    bus: MessageBus, title: str, message: str, image: Image.Image | None = None
) -> int | None:
    """Show a notification; its id, or None when no service showed it."""
    hints = {"image-data": image_hint(image)} if image is not None else {}
    try:
        reply = await bus.call(
            Message(
                destination=SERVICE,
                path=PATH,
                interface=SERVICE,
                member="Notify",
                signature="susssasa{sv}i",
                body=[APP_NAME, 0, "", title, message, [], hints, DEFAULT_TIMEOUT],
            )
        )
    except Exception as exc:  # the connection is going away
        log.debug("notification not sent: %s", exc)
        return None
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        error = reply.error_name if reply is not None else "no reply"
        log.debug("no notification service (%s)", error)
        return None
    return int(reply.body[0])
