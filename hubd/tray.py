"""`hubd tray`: the icon that is the whole interface for people who never open a terminal.

The glue between the pure parts (tray_state, tray_icons, tray_menu, tray_notices), the poller
and pystray. It talks to the daemon only through its control API. pystray is imported only
in `run_tray` (via hubd._tray.backends): importing this module never needs a display.

Threads: pystray's loop owns the main thread; the poller delivers snapshots from its own
thread; menu clicks are handed to one worker thread, so a slow daemon never freezes the
icon, and actions run one at a time in the order clicked.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import webbrowser
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubd._tray.backends import load_backend
from hubd._tray.backends.hosthint import TK_MISSING_HINT, tk_available
from hubd._tray.desktop import Desktop, SystemDesktop
from hubd._tray.icons import app_icon_svg, draw_icon
from hubd._tray.instance import only_tray
from hubd._tray.launcher import Launcher, open_with_desktop
from hubd._tray.menu import (
    Action,
    ItemSpec,
    build_menu,
    default_action,
    find_item,
    split_action,
    to_pystray,
    without_windows,
)
from hubd._tray.notices import NoticeTracker
from hubd._tray.poller import Poller
from hubd._tray.state import Snapshot, TrayState, fetch_snapshot, tooltip
from hubd._tray.worker import Worker
from hubd.control import ControlClient
from hubd.errors import BackupError, HubdError
from hubd.timing import Timing

if TYPE_CHECKING:
    from hubd._tray.backends.xorg import Rect

log = logging.getLogger(__name__)

ICON_NAME = "hubd"

_VERBS = {
    Action.START: "start JupyterHub",
    Action.STOP: "stop JupyterHub",
    Action.RESTART: "restart JupyterHub",
    Action.OPEN: "open JupyterHub",
    Action.ADDRESS: "show the address",
    Action.ADD_USER: "add a user",
    Action.LOGS: "show the logs",
    Action.HOW_TO_START: "show how to start hubd",
    Action.UPGRADE: "upgrade JupyterHub",
    Action.BACKUP: "back up",
    Action.COPY_ADDRESS: "copy the address",
    Action.START_DAEMON: "start hubd",
    Action.START_AT_LOGIN: "change the start at login",
    Action.UNLOCK: "unlock the account",
    Action.NEW_PASSWORD: "set a new password",
}


@dataclass(frozen=True)
class TrayPlace:
    """Where the daemon is: its control socket, and its log file if the tray may read it."""

    socket: Path
    log_file: Path | None = None


def app_icon_png(size_px: int) -> bytes:
    """hubd's application icon (the running hub's face) as a PNG of SIZE_PX, for the desktop's
    application menu (`hubd service install` puts it into the hicolor icon theme)."""
    buffer = io.BytesIO()
    draw_icon(TrayState.RUNNING, size_px).save(buffer, format="PNG")
    return buffer.getvalue()


def app_icon_scalable() -> bytes:
    """The same icon as SVG."""
    return app_icon_svg().encode()


def how_to_start_text(reason: str | None) -> str:
    text = (
        "The tray shows and controls JupyterHub through hubd, and it cannot reach hubd: "
        "most likely hubd is not running.\n\n"
        "To start hubd now and at every boot, run this once in a terminal:\n\n"
        "    hubd service install\n\n"
        "Or, to run it only until that terminal is closed:\n\n"
        "    hubd run\n\n"
        "The tray notices within a few seconds once hubd is up."
    )
    return f"{text}\n\nDetails: {reason}" if reason else text


def notify_send(title: str, message: str) -> None:
    """Desktop notification for backends without their own (pystray's xorg)."""
    command = shutil.which("notify-send")
    if command is None:
        return
    try:
        subprocess.Popen(
            [command, "--app-name=hubd", title, message],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        log.debug("notify-send failed: %s", exc)


class TrayApp:
    def __init__(
        self,
        locate: Callable[[], TrayPlace],
        pystray: Any,
        icon_factory: Any,
        *,
        open_url: Callable[[str], object] = webbrowser.open,
        open_path: Callable[[Path], bool] = open_with_desktop,
        launcher: Launcher | None = None,
        notify_fallback: Callable[[str, str], None] = notify_send,
        timing: Timing,
        windows_available: bool = True,
        desktop: Desktop | None = None,
    ) -> None:
        self._timing = timing
        self._locate = locate
        self._windows_available = windows_available
        self._open_url = open_url
        self._open_path = open_path
        self._launcher = launcher or Launcher(timing=timing)
        self._desktop = desktop or SystemDesktop(self._launcher, timing, windows_available)
        self._notify_fallback = notify_fallback
        self._lock = threading.Lock()
        self._tracker = NoticeTracker(timing=timing)
        self._worker = Worker()
        # Every change to the pystray icon happens under this lock, and none once stopping:
        # backends hand changes to their own loop thread and wait for it, and a change sent
        # after stop() would wait for a loop that is gone.
        self._icon_lock = threading.Lock()
        self._stopping = False
        self._place = locate()
        self._poll_client = ControlClient(self._place.socket, timing.tray_poll_timeout_s)
        # One poll at a time, and delivered in order: the poller and actions both refresh.
        self._polling = threading.Lock()
        self._poller = Poller(self.refresh, timing.tray_poll_interval_s)
        # Ask once before showing anything, so the icon starts with the right face.
        self._snapshot = self._fetch()
        self._specs = self._menu_for(self._snapshot)
        self._notices_pending = self._tracker.update(self._snapshot)
        self.icon = icon_factory(
            ICON_NAME,
            icon=draw_icon(self._snapshot.look),
            title=tooltip(self._snapshot),
            menu=to_pystray(pystray, self.current_menu, self.activate),
        )
        if hasattr(type(self.icon), "on_primary_click"):  # the mended X11 icon (backends.xorg)
            self.icon.on_primary_click = self.primary_click
            self.icon.on_secondary_click = self.show_popup_menu
        self._ask_attention(self._snapshot)

    # -- state

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def current_menu(self) -> list[ItemSpec]:
        with self._lock:
            return self._specs

    def _menu_for(self, snapshot: Snapshot) -> list[ItemSpec]:
        specs = build_menu(snapshot, self._desktop.facts(daemon_reachable=snapshot.reachable))
        if self._windows_available:
            return specs
        return without_windows(specs, snapshot.log_file_readable)

    def _fetch(self) -> Snapshot:
        place = self._locate()
        if place != self._place:
            self._place = place
            self._poll_client = ControlClient(place.socket, self._timing.tray_poll_timeout_s)
        readable = place.log_file is not None and os.access(place.log_file, os.R_OK)
        return fetch_snapshot(self._poll_client, log_file_readable=readable)

    def _deliver(self, snapshot: Snapshot) -> None:
        notices = self._tracker.update(snapshot)
        with self._lock:
            before, self._snapshot = self._snapshot, snapshot
            old_specs, self._specs = self._specs, self._menu_for(snapshot)
            specs_changed = old_specs != self._specs
        with self._icon_lock:
            if self._stopping:
                return
            if snapshot.look is not before.look:
                self.icon.icon = draw_icon(snapshot.look)
                self._ask_attention(snapshot)
            title = tooltip(snapshot)
            if title != self.icon.title:
                self.icon.title = title
            if specs_changed:
                self.icon.update_menu()
        for notice in notices:
            self.notify(notice.title, notice.message)

    def _ask_attention(self, snapshot: Snapshot) -> None:
        # Panels keep a StatusNotifierItem that needs attention in view (not in an overflow).
        if hasattr(type(self.icon), "needs_attention"):  # backends.sni
            self.icon.needs_attention = snapshot.look is TrayState.FAILING

    def refresh(self) -> None:
        """Poll now (from any thread) and wait until the icon and menu show the result."""
        with self._polling:
            self._deliver(self._fetch())

    # -- running

    def _setup(self, icon: Any) -> None:
        with self._icon_lock:
            stopping = self._stopping
            if not stopping:
                icon.visible = True
        if stopping:  # quit (e.g. a signal) came before the loop was up: end it now
            icon.stop()
            return
        for notice in self._notices_pending:
            self.notify(notice.title, notice.message)
        self._poller.start()

    def run(self) -> None:
        """Show the icon until Quit; blocks (pystray needs the main thread on macOS)."""
        try:
            self.icon.run(setup=self._setup)
        finally:
            self.close()

    def quit(self) -> None:
        """Quit the tray. The hub and the daemon go on: this only removes the icon."""
        with self._icon_lock:
            if self._stopping:
                return
            self._stopping = True
        self._poller.stop()
        with self._icon_lock:
            self.icon.stop()

    def quit_at_start(self) -> None:
        """Quit asked for before `run`: the loop stops as soon as it is up (in `_setup`)."""
        with self._icon_lock:
            self._stopping = True

    def close(self) -> None:
        with self._icon_lock:
            self._stopping = True
        self._poller.stop()
        self._worker.close()
        self._launcher.close()

    def notify(self, title: str, message: str) -> None:
        log.info("%s: %s", title, message)
        if getattr(self.icon, "HAS_NOTIFICATION", False):
            with self._icon_lock:
                if self._stopping:
                    return
                try:
                    # macOS refuses a notification without a title.
                    self.icon.notify(message, title)
                    return
                except Exception as exc:  # a notification is never worth the tray
                    log.debug("notification failed: %s", exc)
        self._notify_fallback(title, message)

    # -- clicks

    def activate(self, action: str) -> None:
        """Called by the menu (on pystray's thread): do it on the worker, return at once."""
        self._worker.submit(lambda: self._perform(action))

    def primary_click(self, anchor: Rect | None = None) -> None:
        """A click on a host without menus: the default action, else the pop-up menu."""
        action = default_action(self.current_menu())
        if action is not None:
            self.activate(action)
        else:
            self.show_popup_menu(anchor)

    def show_popup_menu(self, anchor: Rect | None = None) -> None:
        """The menu for hosts without menus, beside the icon at `anchor` (else the pointer)."""
        specs = json.dumps([spec.to_json() for spec in self.current_menu()])

        def chosen(code: int, out: str) -> None:
            if code == 0 and out.strip():
                self.activate(out.strip())

        args = ["--anchor", ",".join(map(str, anchor))] if anchor is not None else []
        self._launcher.window(
            "popup", "hubd._tray.windows.popup", args, stdin_text=specs, on_exit=chosen
        )

    def _menu_changed(self) -> None:
        """The menu after a change outside the daemon's status (start at login)."""
        with self._lock:
            self._specs = self._menu_for(self._snapshot)
        with self._icon_lock:
            if not self._stopping:
                self.icon.update_menu()

    def _perform(self, action: str) -> None:
        with self._lock:
            spec = find_item(self._specs, action)
            snapshot = self._snapshot
        if spec is None or not spec.enabled:
            # The menu changed between the click and now (e.g. the hub stopped meanwhile).
            log.info("tray: %s is not possible now", action)
            return
        try:
            self._dispatch(action, snapshot)
        except HubdError as exc:
            self.notify(f"Could not {_verb(action)}", str(exc))
        except Exception as exc:
            log.exception("tray: %s failed", action)
            self.notify(f"Could not {_verb(action)}", f"Unexpected error: {exc}")

    def _dispatch(self, action: str, snapshot: Snapshot) -> None:
        client = ControlClient(self._place.socket, self._timing.tray_action_timeout_s)
        url = snapshot.hub_url
        if action == Action.OPEN and url:
            self._open_url(url)
        elif action == Action.ADDRESS and snapshot.phone_url:
            args = ["--url", snapshot.phone_url]
            for alt in snapshot.address_urls:
                args += ["--alt", alt]
            if snapshot.fingerprint:
                args += ["--fingerprint", snapshot.fingerprint]
            self._launcher.window("address", "hubd._tray.windows.address", args)
        elif action in (Action.START, Action.STOP, Action.RESTART):
            if action == Action.RESTART:
                self._tracker.expect_restart()
            getattr(client, action)()
            self.refresh()
        elif action == Action.ADD_USER:
            self._launcher.window(
                "add-user",
                "hubd._tray.windows.dialog",
                ["--socket", str(self._place.socket)],
                on_exit=self._add_user_closed,
            )
        elif action == Action.UPGRADE:
            self._upgrade()
        elif action == Action.LOGS:
            self._show_logs(snapshot)
        elif action == Action.BACKUP:
            # Its own thread: a first backup can take long, and the menu must stay usable.
            threading.Thread(target=self._back_up, args=(client,), daemon=True).start()
        elif action == Action.HOW_TO_START:
            self._launcher.window(
                "how-to-start",
                "hubd._tray.windows.text",
                ["--title", "How to start hubd", "--text", how_to_start_text(snapshot.error)],
            )
        elif action == Action.COPY_ADDRESS and url:
            how = self._desktop.copy(url)
            self.notify("Address copied", f"{url} is on the clipboard ({how}).")
        elif action == Action.START_DAEMON:
            self.notify("Starting hubd", self._desktop.start_daemon())
            self._poller.poke()
        elif action == Action.START_AT_LOGIN:
            spec = find_item(self.current_menu(), action)
            on = not (spec is not None and spec.checked)  # a click flips it
            log.info("tray: %s", self._desktop.set_start_at_login(on))
            self._menu_changed()
        elif action == Action.QUIT:
            self.quit()
        else:
            self._dispatch_user(action, client)

    def _dispatch_user(self, action: str, client: ControlClient) -> None:
        """Unlock:NAME and password:NAME from the Users menu."""
        kind, name = split_action(action)
        if name is None:
            return
        if kind == Action.UNLOCK:
            result = client.unlock_user(name)
            if result.get("was_locked"):
                self.notify(f"{name} is unlocked", f"{name} can sign in again now.")
            else:
                self.notify(f"{name} was not locked", f"{name} can sign in (no lockout).")
        elif kind == Action.NEW_PASSWORD:
            self._launcher.window(
                "password",
                "hubd._tray.windows.dialog",
                ["--socket", str(self._place.socket), "--password-for", name],
                on_exit=self._password_closed,
            )

    def _password_closed(self, code: int, out: str) -> None:
        if code == 0 and out.strip():
            name = out.strip()
            self.notify("Password changed", f"{name} signs in with the new password now.")

    def _upgrade(self) -> None:
        """The same health-gated upgrade as `hubd upgrade`, on the images the daemon's check
        already fetched; the hub is down for a moment, which is no crash."""
        client = ControlClient(self._place.socket, self._timing.upgrade_request_timeout_s)
        plan = client.upgrade_plan(pull=False)
        if plan.get("up_to_date"):
            self.notify("Nothing to upgrade", "JupyterHub is up to date.")
            return
        self.notify("Upgrading JupyterHub", "People's servers keep running meanwhile.")
        self._tracker.expect_restart()
        client.upgrade_apply(plan)
        # The daemon's status now tells how it went; the notices announce that once.
        self.refresh()

    def _back_up(self, client: ControlClient) -> None:
        self._poller.poke()  # the menu shows "Backing up now"
        try:
            result = client.backup()
        except BackupError:
            pass  # the daemon recorded it: the next poll brings the "Backup failed" notice
        except HubdError as exc:
            self.notify("Could not back up", str(exc))
        else:
            self.notify("Backup done", f"Saved to {result.get('target')}.")
        self._poller.poke()

    def _add_user_closed(self, code: int, out: str) -> None:
        if code != 0:
            return
        name = out.strip() or "The new user"
        url = self.snapshot.hub_url
        self.notify("User added", f"{name} can now log in" + (f" at {url}" if url else "."))
        self._poller.poke()

    def _show_logs(self, snapshot: Snapshot) -> None:
        log_file = self._place.log_file
        if snapshot.log_file_readable and log_file is not None:
            if not self._open_path(log_file):
                self._launcher.window(
                    "logs",
                    "hubd._tray.windows.text",
                    ["--title", f"hubd log — {log_file}", "--file", str(log_file)],
                )
        else:
            self._launcher.window(
                "logs",
                "hubd._tray.windows.text",
                ["--title", "hubd log", "--logs-socket", str(self._place.socket)],
            )


def _verb(action: str) -> str:
    kind, name = split_action(action)
    verb = _VERBS.get(kind, kind)
    return f"{verb} of {name}" if name else verb


class _QuitOnSignals:
    """SIGINT and SIGTERM quit the tray cleanly (exit 0), also while it is still starting:
    loading a GTK backend takes seconds, and a logout can come meanwhile."""

    def __init__(self) -> None:
        self.app: TrayApp | None = None
        self.requested = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handler)

    def _handler(self, _signum: int, _frame: object) -> None:
        self.requested = True
        if self.app is not None:
            # A signal handler runs on the main thread, inside pystray's loop: stopping the
            # icon from there could wait on that same loop, so a helper thread does it.
            threading.Thread(target=self.app.quit, name="hubd-tray-quit", daemon=True).start()

    def watch(self, app: TrayApp) -> None:
        self.app = app
        if self.requested:
            app.quit_at_start()


def run_tray(
    locate: Callable[[], TrayPlace], timing: Timing, runtime_dir: Path | None = None
) -> int:
    """Show the tray until Quit. With `runtime_dir`, only if no other tray of this desktop
    session runs (its lock lives there): else say so and return 0, showing nothing."""
    signals = _QuitOnSignals() if threading.current_thread() is threading.main_thread() else None
    # The backend first: without a desktop session to show a tray in, that is the one line
    # to say (and there is no session whose tray to look for).
    pystray, icon_factory = load_backend(timing)
    guard = only_tray(runtime_dir, os.environ) if runtime_dir is not None else nullcontext()
    with guard as other:
        if other is not None:
            print(other.message())
            return 0
        windows_available = tk_available()
        if not windows_available:
            log.warning("%s", TK_MISSING_HINT)
        app = TrayApp(
            locate, pystray, icon_factory, timing=timing, windows_available=windows_available
        )
        if signals is not None:
            signals.watch(app)
        app.run()
    return 0
