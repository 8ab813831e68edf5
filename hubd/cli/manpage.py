"""hubd(1), generated from the parser with argparse-manpage (not written by hand)."""

from __future__ import annotations

import argparse
from typing import Any

from hubd import __version__
from hubd.cli.exit_codes import EXIT_CODES


def render(parser: argparse.ArgumentParser) -> str:
    from argparse_manpage.manpage import Manpage

    # argparse-manpage's documented hook for extra sections.
    sections: list[dict[str, Any]] = [
        {
            "heading": "Exit status",
            "content": "\n".join(
                f".TP\n\\fB{code}\\fR ({name})\n{_roff(text)}" for code, name, text in EXIT_CODES
            ),
        },
        {
            "heading": "Files",
            "content": _roff(
                "The config file: `hubd config path`. hubd's log: `hubd status` names it. "
                "Shell completion: `hubd completion bash|zsh|fish`."
            ),
        },
    ]
    parser._manpage = sections  # type: ignore[attr-defined]
    page = Manpage(parser)
    page.source = f"hubd {__version__}"
    page.manual = "hubd manual"
    page.description = "JupyterHub at home, run and looked after on Docker"
    return str(page)


def _roff(text: str) -> str:
    """Plain text safe in roff: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )
