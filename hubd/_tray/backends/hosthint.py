"""Never silent: what to say when no tray host shows the icon, or the windows cannot open.

Which desktop setting or package fixes it depends on the desktop, read from
`XDG_CURRENT_DESKTOP` (as set by every desktop's session).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger("hubd.tray")

_GENERIC = (
    "run a system tray or a panel with one (e.g. xfce4-panel with its Status Tray plugin, "
    "or trayer), or start `hubd tray` from a desktop session that has one"
)

# Lower-case names as found in XDG_CURRENT_DESKTOP (a colon-separated list).
_BY_DESKTOP = {
    "gnome": (
        "GNOME shows tray icons only with the AppIndicator extension: install "
        "gnome-shell-extension-appindicator (Debian/Ubuntu/Fedora) and enable it in the "
        "Extensions app, then log out and in again"
    ),
    "unity": "install and enable the AppIndicator extension (gnome-shell-extension-appindicator)",
    "kde": "add the System Tray widget to a Plasma panel (right-click the panel → Add Widgets)",
    "xfce": (
        "add the Status Tray Plugin to a panel (Panel → Panel Preferences → Items → + → "
        "Status Tray Plugin)"
    ),
    "lxqt": "add the Status Notifier plugin to the LXQt panel",
    "lxde": "add the System Tray (Notification Area) plugin to the LXDE panel",
    "mate": "add the Notification Area applet to a MATE panel",
    "x-cinnamon": "add the System Tray applet to a Cinnamon panel",
    "cinnamon": "add the System Tray applet to a Cinnamon panel",
    "budgie": "add the System Tray applet to a Budgie panel",
    "sway": 'enable the tray of your bar (swaybar has one; waybar: the "tray" module)',
    "hyprland": 'add waybar\'s "tray" module to your bar',
}


def no_tray_host_advice(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    for name in environ.get("XDG_CURRENT_DESKTOP", "").lower().split(":"):
        if name in _BY_DESKTOP:
            return _BY_DESKTOP[name]
    if not environ.get("WAYLAND_DISPLAY") and environ.get("DISPLAY"):
        return f"this X11 session has no system tray: {_GENERIC}"
    return _GENERIC


def no_tray_host_warning(wait_s: float, environ: Mapping[str, str] | None = None) -> str:
    return (
        f"the tray icon is not shown: no tray on this desktop took it within {wait_s:g} s. "
        f"To see it, {no_tray_host_advice(environ)}. hubd keeps offering the icon, so it "
        "appears as soon as a tray is there."
    )


TK_MISSING_HINT = (
    "the tray's windows (address and QR code, add a user, logs, how to start) need Tk, which "
    "this Python does not have; they are greyed out in the menu. To get them, install Tk for "
    "this Python: Debian/Ubuntu `sudo apt install python3-tk`, Fedora `sudo dnf install "
    "python3-tkinter`, Arch `sudo pacman -S tk`, openSUSE `sudo zypper install python3-tk`"
)


def tk_available() -> bool:
    """Whether the helper windows can open: they are Tk programs run by this Python."""
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True
