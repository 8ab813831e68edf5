"""The daemon's control API: HTTP/JSON over a Unix socket, for the CLI and the tray.

`server` is the daemon's side, `client` the CLI's and the tray's, `protocol` what both agree on.
"""

from hubd.control.client import ControlClient
from hubd.control.server import ControlBackend, ControlServer

__all__ = ["ControlBackend", "ControlClient", "ControlServer"]
