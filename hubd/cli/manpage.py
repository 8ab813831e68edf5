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
            "content": "\n".join(f"{code}  {name}: {text}" for code, name, text in EXIT_CODES),
        },
        {
            "heading": "Files",
            "content": "The config file: `hubd config path`. hubd's log: `hubd status` names "
            "it. Shell completion: `hubd completion bash|zsh|fish`.",
        },
    ]
    parser._manpage = sections  # type: ignore[attr-defined]
    page = Manpage(parser)
    page.source = f"hubd {__version__}"
    page.manual = "hubd manual"
    page.description = "JupyterHub at home, run and looked after on Docker"
    return str(page)
