"""Choose and load the tray icon's backend, only inside `hubd tray`: the one place that decides.

- **Linux with a StatusNotifierItem host** on the session bus (KDE Plasma, GNOME with the
  AppIndicator extension, xfce's Status Tray, LXQt, waybar...): hubd's own D-Bus icon,
  `hubd._tray.backends.sni`. Most current panels show icons only this way.
  Also on desktops whose panels show nothing else (GNOME, KDE, Wayland sessions...), even
  before their panel is up: the icon then appears as soon as it is.
- **Linux otherwise**: pystray's choice (AppIndicator or GTK when PyGObject is there, else
  plain X11); on plain X11, hubd's mended icon of `hubd._tray.backends.xorg`; AppIndicator
  and GTK with `hubd._tray.backends.gtk`'s notifier that never ends the tray.
- **macOS, Windows**: pystray's own backends.

`PYSTRAY_BACKEND` (`xorg`, `gtk`, `appindicator`...) forces one of pystray's, and
`PYSTRAY_BACKEND=sni` hubd's D-Bus icon.

pystray picks its backend when imported and, without a display, the import raises an Xlib
error rather than ImportError. So nothing imports pystray at module level: the daemon and the
CLI never load it, and a missing display becomes one clear message.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from hubd.errors import HubdError
from hubd.timing import Timing

SNI = "sni"


class TrayUnavailable(HubdError):
    """No tray icon can be shown here (no graphical session, no usable backend)."""

    exit_code = os.EX_UNAVAILABLE


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _wayland_only() -> bool:
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


# Desktops whose panels show only StatusNotifierItems (as XDG_CURRENT_DESKTOP names them).
# At login the tray may start before the panel (or GNOME's AppIndicator extension) is up: on
# these it waits for it as a StatusNotifierItem, which registers once a watcher appears.
SNI_ONLY_DESKTOPS = frozenset({"gnome", "kde", "unity", "lxqt", "budgie", "sway", "hyprland"})


def wants_sni(environ: Mapping[str, str] | None = None, *, timing: Timing) -> bool:
    """Whether this session shows StatusNotifierItems (or one is asked for)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    forced = environ.get("PYSTRAY_BACKEND")
    if forced:
        return forced == SNI
    from hubd._tray.backends.sni import session_bus_address, sni_host_present

    if sni_host_present(timing.tray_sni_probe_timeout_s):
        return True
    desktops = set(environ.get("XDG_CURRENT_DESKTOP", "").lower().split(":"))
    sni_only = bool(environ.get("WAYLAND_DISPLAY")) or bool(desktops & SNI_ONLY_DESKTOPS)
    return sni_only and session_bus_address() is not None


@contextlib.contextmanager
def _pystray_backend(name: str) -> Iterator[None]:
    # pystray reads the variable at import; helper processes must not inherit it.
    before = os.environ.get("PYSTRAY_BACKEND")
    os.environ["PYSTRAY_BACKEND"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYSTRAY_BACKEND", None)
        else:
            os.environ["PYSTRAY_BACKEND"] = before


def load_pystray(*, sni: bool = False) -> Any:
    if sni:
        # Only pystray's menu classes and base Icon are needed: its "dummy" backend loads
        # them without touching the display (there may be none, on Wayland).
        with _pystray_backend("dummy"):
            import pystray
        return pystray
    if not _has_display():
        raise TrayUnavailable(
            "no graphical session here (DISPLAY is not set): run `hubd tray` from your "
            "desktop session, or let it start at login"
        )
    if _wayland_only() and os.environ.get("PYSTRAY_BACKEND") not in ("gtk", "appindicator"):
        # pystray's X11 backend would fail with Xlib's 'Bad display name ""'.
        raise TrayUnavailable(
            "this Wayland session has no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not "
            "set): on Wayland the tray icon is a StatusNotifierItem on that bus. Run `hubd "
            "tray` from your desktop session (not through su or ssh), or let it start at login"
        )
    try:
        import pystray
    except Exception as exc:  # Xlib raises its own errors, not ImportError
        raise TrayUnavailable(
            f"cannot show a tray icon: {exc or type(exc).__name__}. On Linux the tray needs "
            "a desktop with a system tray (StatusNotifierItem over D-Bus, or X11)"
        ) from None
    return pystray


def is_xorg(pystray: Any) -> bool:
    return str(getattr(pystray.Icon, "__module__", "")).endswith("._xorg")


def icon_class(pystray: Any, timing: Timing, *, sni: bool = False) -> Any:
    """The Icon class to use: hubd's D-Bus one, pystray's own, or on X11 hubd's mended one."""
    host_wait_s = timing.tray_host_wait_s
    if sni:
        from pystray._base import Icon as BaseIcon

        from hubd._tray.backends.sni import sni_icon_class

        return sni_icon_class(BaseIcon, pystray.Menu.SEPARATOR, host_wait_s)
    from hubd._tray.backends.gtk import is_gtk_family, mended_gtk_icon

    if is_gtk_family(pystray.Icon):
        return mended_gtk_icon(pystray.Icon)
    if not is_xorg(pystray):
        return pystray.Icon
    from hubd._tray.backends.xorg import fixed_xorg_icon

    return fixed_xorg_icon(pystray.Icon, timing)


def load_backend(timing: Timing) -> tuple[Any, Any]:
    """pystray (for its menu classes) and the Icon class for this session."""
    sni = wants_sni(timing=timing)
    pystray = load_pystray(sni=sni)
    return pystray, icon_class(pystray, timing, sni=sni)
