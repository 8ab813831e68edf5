"""The "Show address for phones and tablets" window: the hub's URL as text and as a QR code.

`python -m hubd._tray.windows.address --url URL [--alt URL ...]`. The QR code carries the advertised
name (`http://jupyter.local:8000/`); the `--alt` addresses (the same with an IP address) are
shown as text for devices that do not resolve `.local` names.
"""

from __future__ import annotations

import argparse
import base64
import io
from collections.abc import Sequence

import segno

from hubd._tray.windows.tk import EXIT_DONE, PAD, bring_to_front, centre, make_root, window_main

TITLE = "JupyterHub address"
QR_SCALE = 8  # pixels per module: ~260 px for a typical address, easy for phone cameras
# On a small screen (a Raspberry Pi's 800x480 display) the window must still fit.
QR_SCALE_SMALL_SCREEN = 5
SMALL_SCREEN_HEIGHT_PX = 720


def qr_png(url: str, scale: int = QR_SCALE) -> bytes:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def _build(args: argparse.Namespace) -> int:
    import tkinter as tk
    from tkinter import ttk

    root = make_root(TITLE)
    frame = ttk.Frame(root, padding=PAD)
    frame.grid()
    ttk.Label(frame, text="On a phone or tablet on the same network, open:").grid(
        row=0, column=0, sticky="w"
    )
    url_box = ttk.Entry(
        frame, width=max(30, len(args.url) + 2), justify="center", font="TkHeadingFont"
    )
    url_box.insert(0, args.url)
    url_box.state(["readonly"])  # selectable and copyable, not editable
    url_box.grid(row=1, column=0, sticky="ew", pady=(4, PAD))
    scale = (
        QR_SCALE if root.winfo_screenheight() >= SMALL_SCREEN_HEIGHT_PX else QR_SCALE_SMALL_SCREEN
    )
    image = tk.PhotoImage(master=root, data=base64.b64encode(qr_png(args.url, scale)).decode())
    qr_label = ttk.Label(frame, image=image)
    qr_label.image = image  # type: ignore[attr-defined]  # Tk forgets unreferenced images
    qr_label.grid(row=2, column=0)
    ttk.Label(frame, text="or scan this code with the camera.").grid(row=3, column=0)
    if args.alt:
        ttk.Label(frame, text="If the name does not work on a device, try:", wraplength=320).grid(
            row=4, column=0, sticky="w", pady=(PAD, 0)
        )
        for row, alt in enumerate(args.alt, start=5):
            box = ttk.Entry(frame, width=max(30, len(alt) + 2), justify="center")
            box.insert(0, alt)
            box.state(["readonly"])
            box.grid(row=row, column=0, sticky="ew", pady=1)

    if args.fingerprint:
        # What the trust page shows too: the person compares before trusting (docs/https.md).
        ttk.Label(
            frame,
            text="The page asks the device to trust this hub once. The certificate's "
            "SHA-256 fingerprint, to compare:",
            wraplength=320,
        ).grid(row=90, column=0, sticky="w", pady=(PAD, 0))
        fingerprint = ttk.Label(frame, text=args.fingerprint, wraplength=320, font="TkFixedFont")
        fingerprint.grid(row=91, column=0, sticky="w")

    def copy() -> None:
        root.clipboard_clear()
        root.clipboard_append(args.url)

    buttons = ttk.Frame(frame)
    buttons.grid(row=99, column=0, sticky="e", pady=(PAD, 0))
    ttk.Button(buttons, text="Copy address", command=copy).grid(row=0, column=0, padx=(0, PAD // 2))
    ttk.Button(buttons, text="Close", command=root.destroy).grid(row=0, column=1)
    centre(root)
    bring_to_front(root)
    root.mainloop()
    return EXIT_DONE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd._tray.windows.address",
        description="the hub's address as text and QR code",
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--alt", action="append", default=[], help="another address (text)")
    parser.add_argument(
        "--fingerprint", default="", help="SHA-256 of hubd's root, to compare on the device"
    )
    return window_main(_build, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
