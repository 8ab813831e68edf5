"""A read-only text window: the daemon's logs, or how to start hubd.

`python -m hubd._tray.windows.text --title T` with one of `--text TEXT`, `--file PATH` (its
last lines) or `--logs-socket PATH` (the daemon's `GET /v1/logs`). Logs get a Refresh button.
The text is selectable, so a command shown here can be copied into a terminal.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hubd._tray.windows.tk import EXIT_DONE, PAD, bring_to_front, centre, make_root, window_main
from hubd.control import ControlClient
from hubd.errors import HubdError
from hubd.timing import timing_from_env

LOG_LINES = 500
# A log file can be large; read only its tail.
_TAIL_BYTES = 256 * 1024


def tail_of_file(path: Path, lines: int = LOG_LINES) -> str:
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - _TAIL_BYTES))
            data = file.read()
    except OSError as exc:
        return f"Cannot read {path}: {exc.strerror or exc}"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def logs_from_daemon(socket_path: Path, timeout_s: float, lines: int = LOG_LINES) -> str:
    try:
        return "\n".join(ControlClient(socket_path, timeout=timeout_s).logs(lines))
    except HubdError as exc:
        return f"Cannot get the logs: {exc}"


def _build(args: argparse.Namespace) -> int:
    import tkinter as tk
    from tkinter import ttk

    if args.file:

        def load() -> str:
            return str(tail_of_file(Path(args.file)))
    elif args.logs_socket:

        def load() -> str:
            return logs_from_daemon(Path(args.logs_socket), timing_from_env().tray_logs_timeout_s)
    else:

        def load() -> str:
            return str(args.text or "")

    is_log = bool(args.file or args.logs_socket)

    root = make_root(args.title)
    root.resizable(True, True)
    frame = ttk.Frame(root, padding=PAD)
    frame.grid(sticky="nsew")
    root.columnconfigure(0, weight=1)
    root.rowconfigure(0, weight=1)
    frame.columnconfigure(0, weight=1)
    frame.rowconfigure(0, weight=1)
    width, height = (110, 30) if is_log else (72, 14)
    text = tk.Text(
        frame,
        width=width,
        height=height,
        wrap="none" if is_log else "word",
        font="TkFixedFont" if is_log else "TkTextFont",
        relief="flat",
        padx=6,
        pady=6,
    )
    text.grid(row=0, column=0, sticky="nsew")
    scroll = ttk.Scrollbar(frame, orient="vertical", command=text.yview)
    scroll.grid(row=0, column=1, sticky="ns")
    text.configure(yscrollcommand=scroll.set)

    def show() -> None:
        text.configure(state="normal")
        text.delete("1.0", "end")
        text.insert("1.0", load())
        # Read-only, but still selectable and copyable.
        text.configure(state="disabled")
        if is_log:
            text.see("end")

    buttons = ttk.Frame(frame)
    buttons.grid(row=1, column=0, columnspan=2, sticky="e", pady=(PAD, 0))
    if is_log:
        ttk.Button(buttons, text="Refresh", command=show).grid(row=0, column=0, padx=(0, PAD // 2))
    ttk.Button(buttons, text="Close", command=root.destroy).grid(row=0, column=1)
    show()
    centre(root, shrink_to_screen=True)
    if is_log:
        root.after_idle(lambda: text.see("end"))  # the newest lines, after any shrinking
    bring_to_front(root)
    root.mainloop()
    return EXIT_DONE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd._tray.windows.text", description="hubd's read-only text window"
    )
    parser.add_argument("--title", default="hubd")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--file")
    source.add_argument("--logs-socket")
    return window_main(_build, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
