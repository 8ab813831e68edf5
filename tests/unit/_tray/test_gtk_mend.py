"""pystray's GLib backends mended (hubd/_tray/backends/gtk.py), with a stand-in for pystray's
GtkIcon: a notifier that raises (no notification service) or cannot be made (no session bus)
never ends the tray. The real backend is driven in tests/integration/test_tray_gtk.py."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from hubd._tray.backends.gtk import SafeNotifier, is_gtk_family, mended_gtk_icon


class GError(Exception):
    """Stands for gi.repository.GLib.GError."""


class RaisingNotifier:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def notify(self, title: str, message: str, icon: Any) -> None:
        self.calls.append("notify")
        raise GError("org.freedesktop.DBus.Error.ServiceUnknown")

    def hide(self) -> None:
        self.calls.append("hide")
        raise GError("org.freedesktop.DBus.Error.ServiceUnknown")


def fake_gtk_icon(make_notifier: Any) -> type:
    class GtkIcon:  # what pystray's _util.gtk.GtkIcon does around its notifier
        __module__ = "pystray._appindicator"

        def __init__(self) -> None:
            self._notifier: Any = None
            self.ready = False

        def _mark_ready(self) -> None:
            self.ready = True

        def _initialize(self) -> None:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self._notifier = make_notifier()
            self._mark_ready()

        def _finalize(self) -> None:
            self._notifier.hide()

    return GtkIcon


def test_a_notifier_without_a_service_costs_the_notice_not_the_tray() -> None:
    raising = RaisingNotifier()
    icon = mended_gtk_icon(fake_gtk_icon(lambda: raising))()
    icon._initialize()
    icon._notifier.notify("title", "message", None)
    icon._finalize()  # pystray's own clean-up raised GError here
    assert raising.calls == ["notify", "hide"]


def test_no_session_bus_still_starts_and_ends() -> None:
    def no_bus() -> None:
        raise GError("Cannot autolaunch D-Bus without X11 $DISPLAY")

    icon = mended_gtk_icon(fake_gtk_icon(no_bus))()
    icon._initialize()
    assert icon.ready
    icon._finalize()
    SafeNotifier(None).notify("t", "m", None)


def test_stopped_before_start_ends_cleanly() -> None:
    icon = mended_gtk_icon(fake_gtk_icon(RaisingNotifier))()
    icon._notifier = RaisingNotifier()
    icon._finalize()


def test_the_trays_sigint_handler_survives_pystrays_start() -> None:
    def mine(_signum: int, _frame: object) -> None: ...

    saved = signal.signal(signal.SIGINT, mine)
    try:
        mended_gtk_icon(fake_gtk_icon(RaisingNotifier))()._initialize()
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, saved)


@pytest.mark.parametrize(
    ("module", "family"),
    [("pystray._appindicator", True), ("pystray._gtk", True), ("pystray._xorg", False)],
)
def test_which_backends_are_mended(module: str, family: bool) -> None:
    cls = type("Icon", (), {"__module__": module})
    assert is_gtk_family(cls) is family
