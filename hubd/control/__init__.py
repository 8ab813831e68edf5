"""The daemon's control API: HTTP/JSON over a Unix socket, for the CLI and the tray.

`server` is the daemon's side, `client` the CLI's and the tray's, `protocol` what both agree on.
Each loads when first named: a client (`hubd status`) does not pay for the server's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubd.control.client import ControlClient
    from hubd.control.server import ControlBackend, ControlServer

__all__ = ["ControlBackend", "ControlClient", "ControlServer"]
_WHERE = {"ControlClient": "client", "ControlBackend": "server", "ControlServer": "server"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"hubd.control.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'hubd.control' has no attribute {name!r}")
