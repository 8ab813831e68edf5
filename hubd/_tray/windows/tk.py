"""What the tray's small Tk windows share.

Each window runs as its own process (`python -m hubd._tray.windows.…`), started by the tray: Tk then
never shares a thread with pystray's loop, and a window that is open never blocks the icon.
Exit codes tell the tray how it went.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tkinter as tk

EXIT_DONE = 0  # the window did what it is for (e.g. a user was added)
EXIT_CANCELLED = 1
EXIT_NO_DISPLAY = 2

ERROR_COLOUR = "#b00020"
PAD = 12

log = logging.getLogger(__name__)


def make_root(title: str) -> tk.Tk:
    """A Tk root window, or exit quietly with EXIT_NO_DISPLAY if there is no display."""
    import tkinter as tk

    try:
        root = tk.Tk(className="hubd")
    except tk.TclError as exc:
        print(f"hubd: cannot open a window: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_NO_DISPLAY) from None
    root.title(title)
    root.resizable(False, False)
    root.bind("<Escape>", lambda _event: root.destroy())
    return root


def centre(root: tk.Tk, shrink_to_screen: bool = False) -> None:
    """Centre the window on the screen (there may be no window manager to place it).

    With `shrink_to_screen`, a window larger than 90 % of a small screen (a Raspberry Pi
    display) is made smaller; its weighted grid rows give up the room, its buttons stay.
    """
    root.update_idletasks()
    screen_w, screen_h = root.winfo_screenwidth(), root.winfo_screenheight()
    width, height = root.winfo_reqwidth(), root.winfo_reqheight()
    size = ""
    if shrink_to_screen and (width > screen_w * 0.9 or height > screen_h * 0.9):
        width, height = min(width, int(screen_w * 0.9)), min(height, int(screen_h * 0.9))
        size = f"{width}x{height}"
    x = max(0, (screen_w - width) // 2)
    y = max(0, (screen_h - height) // 3)
    root.geometry(f"{size}+{x}+{y}")


def bring_to_front(root: tk.Tk, focus: tk.Misc | None = None) -> None:
    root.lift()
    root.attributes("-topmost", True)
    root.after(200, lambda: root.attributes("-topmost", False))
    # Without a window manager (and on some desktops for a new process) nothing else would
    # give the keyboard to the new window.
    (focus or root).focus_force()


def window_main(
    build: Callable[[argparse.Namespace], int],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
) -> int:
    """Parse the arguments and run `build`; a window never shows a traceback."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return build(args)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
