"""The "Add user…" dialog: `python -m hubd._tray.windows.dialog --socket PATH`, and the
"New password…" one: `... --password-for NAME`.

Name, password twice, an admin box (for a new password: the name fixed, no admin box). It
calls the daemon's control API itself and shows any refusal inline, so a typo costs one
correction, not a new dialog. Exit code 0 (and the name on stdout) when a user was added or
got the new password, 1 when cancelled, 2 when no window could be shown.
"""

from __future__ import annotations

import argparse
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

from hubd._tray.windows.tk import (
    ERROR_COLOUR,
    EXIT_CANCELLED,
    EXIT_DONE,
    PAD,
    bring_to_front,
    centre,
    make_root,
    window_main,
)
from hubd.config import MIN_PASSWORD_CHARS
from hubd.control import ControlClient
from hubd.errors import HubdError
from hubd.timing import timing_from_env

TITLE = "Add a JupyterHub user"
PASSWORD_TITLE = "New password for {name}"


def check_locally(name: str, password: str, again: str) -> tuple[str, str] | None:
    """What is wrong before asking the daemon: (field, message), or None.

    Only what the daemon cannot see: the second password. The name rules are the daemon's,
    so they are not repeated (and cannot drift) here.
    """
    if not name:
        return "name", "Enter a user name."
    if len(password) < MIN_PASSWORD_CHARS:
        return "password", f"The password needs at least {MIN_PASSWORD_CHARS} characters."
    if password != again:
        return "again", "The two passwords differ. Type the same password twice."
    return None


def _field_of(message: str) -> str:
    return "password" if "password" in message.lower() else "name"


class AddUserDialog:
    def __init__(self, client: ControlClient, password_for: str | None = None) -> None:
        import tkinter as tk
        from tkinter import ttk

        self._client = client
        self._password_for = password_for
        self._results: queue.Queue[HubdError | str] = queue.Queue()
        self.exit_code = EXIT_CANCELLED
        self.added: str | None = None
        self._verb = "Set password" if password_for else "Add user"

        root = self.root = make_root(
            PASSWORD_TITLE.format(name=password_for) if password_for else TITLE
        )
        frame = ttk.Frame(root, padding=PAD)
        frame.grid(sticky="nsew")
        ttk.Label(
            frame,
            text=(
                f"{password_for} will sign in to JupyterHub with this password from now on. "
                "It also lifts a lockout after failed sign-ins."
                if password_for
                else "Someone new can log in to JupyterHub with this name and password."
            ),
            wraplength=340,
        ).grid(row=0, column=0, columnspan=2, sticky="w", pady=(0, PAD))
        self.name = tk.StringVar(value=password_for or "")
        self.password = tk.StringVar()
        self.again = tk.StringVar()
        self.admin = tk.BooleanVar(value=False)
        self.entries: dict[str, ttk.Entry] = {}
        for row, (key, label, var, secret) in enumerate(
            (
                ("name", "User name:", self.name, False),
                ("password", "Password:", self.password, True),
                ("again", "Password again:", self.again, True),
            ),
            start=1,
        ):
            ttk.Label(frame, text=label).grid(row=row, column=0, sticky="w", pady=2)
            entry = ttk.Entry(frame, textvariable=var, width=28, show="•" if secret else "")
            entry.grid(row=row, column=1, sticky="ew", pady=2, padx=(PAD // 2, 0))
            self.entries[key] = entry
        if password_for:
            self.entries["name"].state(["readonly"])
        else:
            ttk.Checkbutton(
                frame,
                text="Administrator (can add users and manage everyone's servers)",
                variable=self.admin,
            ).grid(row=4, column=0, columnspan=2, sticky="w", pady=(PAD // 2, 0))
        self.error = tk.StringVar()
        ttk.Label(
            frame, textvariable=self.error, foreground=ERROR_COLOUR, wraplength=440, justify="left"
        ).grid(row=5, column=0, columnspan=2, sticky="w", pady=(PAD // 2, 0))
        buttons = ttk.Frame(frame)
        buttons.grid(row=6, column=0, columnspan=2, sticky="e", pady=(PAD, 0))
        ttk.Button(buttons, text="Cancel", command=root.destroy).grid(
            row=0, column=0, padx=(0, PAD // 2)
        )
        self.submit_button = ttk.Button(
            buttons, text=self._verb, command=self.submit, default="active"
        )
        self.submit_button.grid(row=0, column=1)
        root.bind("<Return>", lambda _event: self.submit())
        root.bind("<KP_Enter>", lambda _event: self.submit())
        centre(root)
        bring_to_front(root, self.entries["password" if password_for else "name"])

    def show_error(self, field: str, message: str) -> None:
        self.error.set(message)
        entry = self.entries[field]
        entry.focus_set()
        entry.select_range(0, "end")

    def submit(self) -> None:
        if str(self.submit_button["state"]) == "disabled":
            return  # already adding
        name = self.name.get().strip()
        problem = check_locally(name, self.password.get(), self.again.get())
        if problem is not None:
            self.show_error(*problem)
            return
        self.error.set("")
        self.submit_button.configure(text="Saving…" if self._password_for else "Adding…")
        self.submit_button.state(["disabled"])
        password, admin = self.password.get(), self.admin.get()
        threading.Thread(target=self._add, args=(name, password, admin), daemon=True).start()
        self.root.after(50, self._collect)

    def _add(self, name: str, password: str, admin: bool) -> None:
        # Off the Tk thread: the window stays responsive while the hub creates the account.
        try:
            if self._password_for:
                self._client.set_password(name, password)
            else:
                self._client.add_user(name, password, admin)
        except HubdError as exc:
            self._results.put(exc)
        else:
            self._results.put(name)

    def _collect(self) -> None:
        try:
            result = self._results.get_nowait()
        except queue.Empty:
            self.root.after(50, self._collect)
            return
        self.submit_button.configure(text=self._verb)
        self.submit_button.state(["!disabled"])
        if isinstance(result, HubdError):
            message = str(result)
            self.show_error(_field_of(message), message)
            return
        self.added = result
        self.exit_code = EXIT_DONE
        self.root.destroy()

    def run(self) -> int:
        self.root.mainloop()
        return self.exit_code


def _build(args: argparse.Namespace) -> int:
    # Creating the account can wait on the hub (and a first login on a slow machine).
    timeout_s = timing_from_env().tray_add_user_timeout_s
    dialog = AddUserDialog(
        ControlClient(Path(args.socket), timeout=timeout_s), password_for=args.password_for
    )
    code = dialog.run()
    if dialog.added is not None:
        print(dialog.added, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd._tray.windows.dialog", description="hubd's add-user dialog"
    )
    parser.add_argument("--socket", required=True, help="the daemon's control socket")
    parser.add_argument(
        "--password-for", metavar="NAME", help="set a new password for NAME instead of adding"
    )
    return window_main(_build, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
