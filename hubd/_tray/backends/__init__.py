"""Load pystray, only inside `hubd tray`, and fix what its xorg backend lacks.

pystray picks its backend when imported (appindicator, then gtk, then xorg on Linux; the
`PYSTRAY_BACKEND` variable overrides) and, without a display, the import raises an Xlib error
rather than ImportError. So nothing imports pystray at module level: the daemon and the CLI
never load it, and a missing display becomes one clear message. On plain X11 the tray uses
the fixed Icon of `hubd._tray.backends.xorg`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hubd.errors import HubdError
from hubd.timing import Timing


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
            "desktop session, or let it start at login"
        )
    try:
        import pystray
    except Exception as exc:  # Xlib raises its own errors, not ImportError
        raise TrayUnavailable(
            f"cannot show a tray icon: {exc or type(exc).__name__}. On Linux the tray needs "
            "an X11 session or AppIndicator support (python3-gi)"
        ) from None
    return pystray


def is_xorg(pystray: Any) -> bool:
    return str(getattr(pystray.Icon, "__module__", "")).endswith("._xorg")


def icon_class(pystray: Any, timing: Timing) -> Any:
    """The Icon class to use: pystray's own, or on plain X11 hubd's fixed one."""
    if not is_xorg(pystray):
        return pystray.Icon
    from hubd._tray.backends.xorg import fixed_xorg_icon

    return fixed_xorg_icon(pystray.Icon, timing)
