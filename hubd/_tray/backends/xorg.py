"""pystray's plain-X11 ("xorg") Icon, fixed: clicks arrive, changes from threads never hang.

Imported only by `hubd._tray.backends` once pystray's xorg backend is chosen (it needs a display).
What the subclass changes, and why:

- **Clicks.** pystray's window never selects ButtonPress events, so a click on the docked icon
  reaches nobody. The subclass selects them: a left click calls `on_primary_click`, a right
  click `on_secondary_click` (the tray opens its pop-up menu there, since X11 trays have no
  menus).
- **Changes from other threads.** pystray hands every change (picture, title, show, stop)
  to its X thread by sending a message through the same Xlib connection that thread is
  blocked reading, and collects every answer on one shared queue. python-xlib can then lose
  the wake-up (the message sits in its event queue while the X thread still waits), and
  concurrent callers can take each other's answers; seen as a tray that hangs on quit. Here
  each call waits for its own answer, and the wake-up is sent over a second connection used
  for nothing else, so the X thread's connection is only ever used by the X thread.
- **Docking.** pystray asks the tray host to dock the window once when shown (a request the
  host may miss, e.g. while it is still starting at login; then the icon never appears) and
  again for every new picture (hosts then re-embed it: trayer unmaps and maps it, others may
  add a second slot). Here the icon checks every second that it is embedded and asks again
  only if not, which also docks it in a tray host that starts after the tray.
- **Size.** pystray creates the window 1x1; KDE's bridge for X11 tray icons
  (`xembedsniproxy`) then publishes an empty picture (it only resizes windows that are 0x0 or
  larger than 32 px). Created at 24x24 it shows, and other hosts resize it as they like.
- **Never silent.** If no tray host has embedded the icon `host_wait_s` after it was shown,
  one warning says what to install or enable on this desktop.
- **Drawing.** pystray stretches the picture to the slot the host gives (often not square)
  and drops its transparency onto black; the subclass keeps the aspect ratio and blends the
  edges with the panel's colour beside the icon.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image
from Xlib import X
from Xlib import display as xdisplay
from Xlib.protocol import event as xevent

from hubd._tray.backends.hosthint import no_tray_host_warning
from hubd.timing import Timing

log = logging.getLogger(__name__)

# x, y, width, height on the screen
Rect = tuple[int, int, int, int]

# The size the window is created at (see "Size" above).
WINDOW_SIZE_PX = 24

_Call = tuple[Callable[[], None], "queue.Queue[BaseException | None]"]


def fixed_xorg_icon(base: Any, timing: Timing) -> Any:
    """A subclass of pystray's xorg `Icon` class `base` (see the module's docstring)."""
    # How often a thread waiting for the X thread re-checks that the loop is still there, and
    # how often the icon checks that a tray host has embedded it, asking again if not; and
    # how long without a tray host before one warning says so.
    call_recheck_s = timing.tray_x_call_recheck_s
    dock_check_interval_s = timing.tray_dock_check_interval_s
    host_wait_s = timing.tray_host_wait_s

    class FixedXorgIcon(base):  # type: ignore[misc]
        on_primary_click: Callable[[Rect | None], None] | None = None
        on_secondary_click: Callable[[Rect | None], None] | None = None
        _icon_data: Any  # pystray's scaled picture, redrawn by _assert_icon_data

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # Before pystray's __init__, which calls _rewrite_implementation.
            self._calls: queue.Queue[_Call] = queue.Queue()
            self._loop_done = threading.Event()
            self._waker_lock = threading.Lock()
            self._waker: Any = None
            self._dock_watch: threading.Thread | None = None
            self._docked = False
            super().__init__(*args, **kwargs)

        # -- changes from other threads

        def _run(self) -> None:
            # pystray marks the icon ready (starting the setup thread, which shows the icon)
            # before it records its X thread; record it first, so that no early change runs
            # on the setup thread.
            self._thread = threading.current_thread()
            self._mark_ready()
            self._mainloop()

        def _rewrite_implementation(self, *methods: Any) -> None:
            self._wake_atom = self._display.intern_atom("_HUBD_TRAY_WAKE")
            self._waker = xdisplay.Display(self._display.get_display_name())
            for method in methods:
                setattr(self, method.__name__, self._on_x_thread(method))
            self._message_handlers[X.ClientMessage] = self._on_client_message

        def _on_x_thread(self, method: Callable[[], None]) -> Callable[[], None]:
            @functools.wraps(method)
            def call() -> None:
                loop = getattr(self, "_thread", None)
                if loop is None or loop is threading.current_thread():
                    method()  # not running yet, or already on the X thread
                    return
                answer: queue.Queue[BaseException | None] = queue.Queue(maxsize=1)
                self._calls.put((method, answer))
                self._wake()
                while True:
                    try:
                        error = answer.get(timeout=call_recheck_s)
                    except queue.Empty:
                        if self._loop_done.is_set():
                            return  # the icon is gone: nothing left to change
                        continue
                    if error is not None:
                        raise error
                    return

            return call

        def _wake(self) -> None:
            with self._waker_lock:
                if self._waker is None:
                    return
                window = self._waker.create_resource_object("window", self._window.id)
                message = xevent.ClientMessage(
                    window=window, client_type=self._wake_atom, data=(32, [0, 0, 0, 0, 0])
                )
                with contextlib.suppress(Exception):  # the window is gone: the loop ended
                    window.send_event(message, event_mask=X.NoEventMask)
                    self._waker.flush()

        def _on_client_message(self, event: Any) -> None:
            if event.client_type != self._wake_atom:
                return
            while True:
                try:
                    method, answer = self._calls.get_nowait()
                except queue.Empty:
                    return
                try:
                    method()
                except Exception as exc:
                    answer.put(exc)
                else:
                    answer.put(None)

        def _mainloop(self) -> None:
            try:
                super()._mainloop()
            finally:
                self._loop_done.set()
                with self._waker_lock:
                    if self._waker is not None:
                        self._waker.close()
                        self._waker = None

        # -- clicks

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask
            )
            window.configure(width=WINDOW_SIZE_PX, height=WINDOW_SIZE_PX)
            return window

        def _on_button_press(self, event: Any) -> None:
            # On the X thread: the callbacks must return at once.
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

        # -- docking

        def _show(self) -> None:
            # pystray logs a traceback when there is no tray host yet; the watch below
            # docks the icon once one appears.
            with contextlib.suppress(AssertionError):
                self._assert_docked()
            if self._dock_watch is None:
                self._dock_watch = threading.Thread(
                    target=self._watch_docking, name="hubd-tray-dock", daemon=True
                )
                self._dock_watch.start()

        def _watch_docking(self) -> None:
            ensure = self._on_x_thread(self._ensure_docked)
            warn_at = time.monotonic() + host_wait_s
            while not self._loop_done.wait(dock_check_interval_s):
                if self.visible:
                    ensure()
                if warn_at and time.monotonic() >= warn_at:
                    warn_at = 0.0
                    if not self._docked:
                        log.warning("%s", no_tray_host_warning(host_wait_s))

        def _ensure_docked(self) -> None:
            """Ask to be docked again if no tray host has embedded the window (yet)."""
            try:
                parent = self._window.query_tree().parent
                root = self._display.screen().root
            except Exception:  # the window is gone: the loop is ending
                return
            self._docked = parent is not None and parent.id != root.id
            if self._docked:
                return
            self._systray_manager = None
            with contextlib.suppress(AssertionError):  # no tray host yet: next time
                self._assert_docked()

        # -- drawing

        def _update_icon(self) -> None:
            if self._systray_manager is None:
                with contextlib.suppress(AssertionError):  # no tray host yet: see _show
                    self._assert_docked()
            self._icon_data = None
            self._draw()
            self._icon_valid = True

        def _assert_icon_data(self, width: int, height: int) -> None:
            if self._icon_data and self._icon_data.size == (width, height):
                return
            canvas = Image.new("RGB", (width, height), self._panel_colour(width, height))
            side = max(1, min(width, height))
            picture = self._icon.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)
            canvas.paste(picture, ((width - side) // 2, (height - side) // 2), picture)
            canvas.tostring = canvas.tobytes  # type: ignore[attr-defined]  # as pystray does
            self._icon_data = canvas

        def _panel_colour(self, width: int, height: int) -> tuple[int, int, int]:
            """The colour of the screen just beside the icon (black if it cannot be read)."""
            try:
                root = self._display.screen().root
                origin = root.translate_coords(self._window, 0, 0)
                x = origin.x - 1 if origin.x > 0 else origin.x + width
                pixel = root.get_image(x, origin.y + height // 2, 1, 1, X.ZPixmap, 0xFFFFFFFF).data
                if len(pixel) < 3:
                    return (0, 0, 0)
                if self._display.display.info.image_byte_order == X.LSBFirst:
                    return (pixel[2], pixel[1], pixel[0])
                return (pixel[-3], pixel[-2], pixel[-1])
            except Exception:  # any X error: a black edge is only cosmetic
                return (0, 0, 0)

    return FixedXorgIcon
