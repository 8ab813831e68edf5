"""Load pystray, only inside `hubd tray`, and fix what its xorg backend lacks.

pystray picks its backend when imported (appindicator, then gtk, then xorg on Linux; the
`PYSTRAY_BACKEND` variable overrides) and, without a display, the import raises an Xlib error
rather than ImportError. So nothing imports pystray at module level: the daemon and the CLI
never load it, and a missing display becomes one clear message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from hubd.errors import HubdError

# x, y, width, height on the screen
Rect = tuple[int, int, int, int]


class TrayUnavailable(HubdError):
    """No tray icon can be shown here (no graphical session, no usable backend)."""

    exit_code = os.EX_UNAVAILABLE


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def load_pystray() -> Any:
    if not _has_display():
        raise TrayUnavailable(
            "no graphical session here (DISPLAY is not set): run `hubd tray` from your "
            "desktop session, or let it start at login")
    try:
        import pystray
    except Exception as exc:  # Xlib raises its own errors, not ImportError
        raise TrayUnavailable(
            f"cannot show a tray icon: {exc or type(exc).__name__}. On Linux the tray needs "
            "an X11 session or AppIndicator support (python3-gi)") from None
    return pystray


def is_xorg(pystray: Any) -> bool:
    return str(getattr(pystray.Icon, "__module__", "")).endswith("._xorg")


def icon_class(pystray: Any) -> Any:
    """The Icon class to use: pystray's own, or on xorg one whose clicks arrive."""
    return clickable_xorg_icon(pystray.Icon) if is_xorg(pystray) else pystray.Icon


def clickable_xorg_icon(base: Any) -> Any:
    """A subclass of pystray's xorg Icon that receives clicks and draws the icon cleanly.

    pystray's xorg window never selects ButtonPress events, so a click on the docked icon
    reaches nobody. The subclass adds the mask; a left click calls `on_primary_click`, a
    right click `on_secondary_click` (the tray shows its pop-up menu there), falling back to
    pystray's default action when nothing is set.

    pystray also stretches the picture to the slot the tray host gives (often not square)
    and drops its transparency onto black; the subclass keeps the aspect ratio and blends
    the edges with the panel's colour next to the icon.
    """
    from PIL import Image
    from Xlib import X

    class ClickableXorgIcon(base):  # type: ignore[misc]
        on_primary_click: Callable[[Rect | None], None] | None = None
        on_secondary_click: Callable[[Rect | None], None] | None = None
        _icon_data: Any  # set by pystray's __init__; redrawn by _assert_icon_data

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
            return window

        def _on_button_press(self, event: Any) -> None:
            # Called on pystray's X loop thread: the callbacks must return at once.
            if event.detail == 1:
                if self.on_primary_click is not None:
                    self.on_primary_click(self._screen_rect())
                else:
                    self()
            elif event.detail == 3 and self.on_secondary_click is not None:
                self.on_secondary_click(self._screen_rect())

        def _screen_rect(self) -> Rect | None:
            """Where the docked icon is on the screen, so a menu can open beside it."""
            try:
                geometry = self._window.get_geometry()
                origin = self._display.screen().root.translate_coords(self._window, 0, 0)
            except Exception:  # any X error: the menu then opens at the pointer
                return None
            return (int(origin.x), int(origin.y), int(geometry.width), int(geometry.height))

        def _assert_icon_data(self, width: int, height: int) -> None:
            if self._icon_data and self._icon_data.size == (width, height):
                return
            canvas = Image.new("RGB", (width, height), self._panel_colour(width, height))
            side = max(1, min(width, height))
            picture = self._icon.convert("RGBA").resize((side, side),
                                                        Image.Resampling.LANCZOS)
            canvas.paste(picture, ((width - side) // 2, (height - side) // 2), picture)
            canvas.tostring = canvas.tobytes  # type: ignore[attr-defined]  # as pystray does
            self._icon_data = canvas

        def _panel_colour(self, width: int, height: int) -> tuple[int, int, int]:
            """The colour of the screen just beside the icon (black if it cannot be read)."""
            try:
                root = self._display.screen().root
                origin = root.translate_coords(self._window, 0, 0)
                x = origin.x - 1 if origin.x > 0 else origin.x + width
                pixel = root.get_image(x, origin.y + height // 2, 1, 1, X.ZPixmap,
                                       0xFFFFFFFF).data
                if len(pixel) < 3:
                    return (0, 0, 0)
                if self._display.display.info.image_byte_order == X.LSBFirst:
                    return (pixel[2], pixel[1], pixel[0])
                return (pixel[-3], pixel[-2], pixel[-1])
            except Exception:  # any X error: a black edge is only cosmetic
                return (0, 0, 0)

    return ClickableXorgIcon
