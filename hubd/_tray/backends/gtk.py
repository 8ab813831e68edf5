"""pystray's GTK-family icons (`gtk`, `appindicator`, with PyGObject), mended so that the tray
always ends cleanly.

pystray talks to the desktop's notification service through GLib and lets its errors out:
without an `org.freedesktop.Notifications` on the session bus (a bare window manager, a
session whose notification daemon died), its clean-up at the end of the loop
(`CloseNotification`) raises `GLib.GError`, so Quit and SIGTERM ended with a traceback and
exit code 1; with no session bus at all, the icon could not even start. Here a notifier that
fails is a logged line, never the tray's end. pystray's own start also resets SIGINT to the
default, which would kill the tray without its clean-up: the tray's handler is put back.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import Any

log = logging.getLogger(__name__)


class SafeNotifier:
    """pystray's `notify_dbus.Notifier` (or None when it could not be made), each call
    guarded: a missing notification service costs the notification, nothing else."""

    def __init__(self, notifier: Any | None) -> None:
        self._notifier = notifier

    def notify(self, title: str, message: str, icon: Any) -> None:
        if self._notifier is None:
            log.info("no notification service: %s: %s", title, message)
            return
        try:
            self._notifier.notify(title, message, icon)
        except Exception as exc:  # GLib.GError: no service, or it refused
            log.info("notification not shown (%s): %s: %s", _reason(exc), title, message)

    def hide(self) -> None:
        if self._notifier is None:
            return
        try:
            self._notifier.hide()
        except Exception as exc:
            log.debug("closing the notification failed: %s", _reason(exc))


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__


def mended_gtk_icon(base: Any) -> Any:
    """A subclass of pystray's GTK-family Icon class BASE with a notifier that never raises."""

    class SafeGtkIcon(base):  # type: ignore[misc]
        def _initialize(self) -> None:
            sigint = signal.getsignal(signal.SIGINT)
            try:
                super()._initialize()
            except Exception as exc:  # no session bus: pystray's Notifier() raised
                log.info("no desktop notifications here: %s", _reason(exc))
                self._notifier = None
                self._mark_ready()
            finally:
                _restore_sigint(sigint)
            self._notifier = SafeNotifier(self._notifier)

        def _finalize(self) -> None:
            if not isinstance(self._notifier, SafeNotifier):  # stopped before it was made
                self._notifier = SafeNotifier(self._notifier)
            super()._finalize()

    SafeGtkIcon.__name__ = SafeGtkIcon.__qualname__ = f"Safe{base.__name__}"
    return SafeGtkIcon


def _restore_sigint(handler: Any) -> None:
    if handler is None:
        return
    # ValueError: not the main thread, where pystray could not change it either.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, handler)


def is_gtk_family(icon_class: Any) -> bool:
    """Whether pystray chose one of its GLib-based backends (gtk, appindicator)."""
    module = str(getattr(icon_class, "__module__", ""))
    return module.endswith(("._gtk", "._appindicator"))
