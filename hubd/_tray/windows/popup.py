"""The tray menu for tray hosts that cannot show one (pystray's xorg backend).

`python -m hubd._tray.windows.popup` reads the menu specs as JSON on stdin, pops the menu up at the
mouse pointer, and prints the chosen action id (nothing when dismissed). The tray then
carries the action out, checking that it is still enabled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from hubd._tray.menu import ItemSpec
from hubd._tray.windows.tk import EXIT_CANCELLED, EXIT_DONE, make_root, window_main

# A dismissed menu unmaps before it could invoke anything; this grace lets a click's
# command run first when the two race.
_DISMISS_GRACE_MS = 100


def _fill(menu: Any, specs: Sequence[ItemSpec], choose: Any, tk: Any, bold: Any) -> None:
    for spec in specs:
        if spec.is_separator:
            menu.add_separator()
            continue
        state = "normal" if spec.enabled else "disabled"
        options: dict[str, Any] = {"label": spec.label, "state": state}
        if spec.default:
            options["font"] = bold
        if spec.children:
            sub = tk.Menu(menu, tearoff=False)
            _fill(sub, spec.children, choose, tk, bold)
            menu.add_cascade(menu=sub, **options)
        elif spec.checked is not None:
            var = tk.BooleanVar(master=menu, value=spec.checked)
            menu.add_checkbutton(variable=var, **options)
            menu._hubd_vars = [*getattr(menu, "_hubd_vars", []), var]  # keep them alive
        else:
            action = spec.action
            menu.add_command(command=(lambda a=action: choose(a)) if action else None, **options)


def _place(root: Any, menu: Any, anchor: str | None) -> tuple[int, int]:
    """Where the menu's top-left corner goes: below the icon on a panel at the top of the
    screen, above it on a panel at the bottom; at the pointer when the icon's place is not
    known. Tk itself keeps the menu on the screen horizontally."""
    if anchor:
        try:
            x, y, _width, height = (int(v) for v in anchor.split(","))
        except ValueError:
            pass
        else:
            menu.update_idletasks()
            if y + height // 2 < root.winfo_screenheight() // 2:
                return x, y + height
            return x, max(0, y - menu.winfo_reqheight())
    x, y = root.winfo_pointerxy()
    return int(x), int(y)


def _build(args: argparse.Namespace) -> int:
    import tkinter as tk
    from tkinter import font as tkfont

    specs = [ItemSpec.from_json(item) for item in json.load(sys.stdin)]
    root = make_root("hubd")
    root.withdraw()
    chosen: list[str] = []

    def close() -> None:
        with contextlib.suppress(tk.TclError):  # already gone: a choice and a dismissal raced
            root.destroy()

    def choose(action: str) -> None:
        chosen.append(action)
        close()

    def dismissed(_event: object) -> None:
        with contextlib.suppress(tk.TclError):
            root.after(_DISMISS_GRACE_MS, close)

    menu = tk.Menu(root, tearoff=False)
    bold = tkfont.nametofont("TkMenuFont").copy()
    bold.configure(weight="bold")
    _fill(menu, specs, choose, tk, bold)
    menu.bind("<Unmap>", dismissed)
    x, y = _place(root, menu, args.anchor)

    def post() -> None:
        menu.tk_popup(x, y)
        # The keyboard goes to the window under the pointer unless told otherwise, and the
        # pointer is on the icon, not on the menu: give the menu the keyboard (arrows, Enter).
        menu.focus_force()

    root.after_idle(post)
    root.mainloop()
    if chosen:
        print(chosen[0], flush=True)
        return EXIT_DONE
    return EXIT_CANCELLED


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd._tray.windows.popup",
        description="hubd's tray menu as a pop-up (JSON on stdin)",
    )
    parser.add_argument(
        "--anchor",
        metavar="X,Y,W,H",
        help="the icon's place on the screen; the menu opens beside it",
    )
    return window_main(_build, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
