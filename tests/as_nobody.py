"""Run a bit of test code as the unprivileged user `nobody` (tests run as root in CI)."""

from __future__ import annotations

import os
from collections.abc import Callable

NOBODY = 65534


def preload_cli() -> None:
    """Import every module of hubd's command line beforehand: `nobody` may not be able to
    read this checkout (a clone in a `mktemp -d` folder is the owner's alone)."""
    import importlib
    import pkgutil

    import hubd.cli

    for module in pkgutil.walk_packages(hubd.cli.__path__, "hubd.cli."):
        importlib.import_module(module.name)


def as_nobody(action: Callable[[], str]) -> str:
    """`action()` in a forked child that has become `nobody`; returns what it returned.

    Everything the action needs must be imported beforehand: `nobody` may not be able to read
    this Python's files.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, action().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    return result
