"""Holds text on the clipboard with Tk, where no clipboard program (xclip, xsel, wl-copy,
pbcopy) is installed: `python -m hubd._tray.windows.clipboard --text TEXT --keep-s SECONDS`.

On X11 the clipboard is served by the program that owns it, so this one stays (without a
window) for SECONDS or until the tray quits.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hubd._tray.windows.tk import EXIT_DONE, window_main


def _build(args: argparse.Namespace) -> int:
    import tkinter as tk

    root = tk.Tk()
    root.withdraw()
    root.clipboard_clear()
    root.clipboard_append(args.text)
    root.update()
    root.after(int(args.keep_s * 1000), root.destroy)
    root.mainloop()
    return EXIT_DONE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd._tray.windows.clipboard", description="hold text on the clipboard"
    )
    parser.add_argument("--text", required=True)
    parser.add_argument("--keep-s", type=float, required=True)
    return window_main(_build, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
