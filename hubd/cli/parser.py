"""argparse as hubd uses it: usage errors are HubdErrors (one line, exit 64, like hubd's own
usage errors) and a mistyped choice gets a "did you mean"."""

from __future__ import annotations

import argparse
import re

from hubd.errors import UsageError

TYPE_CHECKING = False  # as in hubd.cli.commands: typing is not imported to start
if TYPE_CHECKING:
    from typing import Any, NoReturn


def suggestion(word: str, choices: Any) -> str:
    """' (did you mean 'status'?)' for a near miss among `choices`, else ''."""
    import difflib  # only for a mistake: not on every start

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class HubdParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Raised, not printed here: the CLI's one place prints it (hubd/cli/__init__.py).
        message = re.sub(r"^argument (COMMAND|ACTION): ", "", message)
        where = self.prog.partition(" ")[2]
        raise UsageError(f"{where + ': ' if where else ''}{message} (see `{self.prog} --help`)")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and value not in choices:
            what = "command" if isinstance(action, argparse._SubParsersAction) else "choice"
            if isinstance(action, argparse._SubParsersAction) and self.prog != "hubd":
                what = "action"
            raise argparse.ArgumentError(
                action, f"unknown {what} '{value}'{suggestion(str(value), choices)}"
            )
