"""One supervisor per stack on a machine.

A user-mode `hubd run` next to the system service would fight over the same containers and
port, and each has its own control socket, so neither sees the other there. The claim is an
abstract Unix socket named after the stack (Linux): any user's hubd sees it, the kernel
drops it when the process dies, even by SIGKILL, and its holder's pid and user come with it
(SO_PEERCRED). Elsewhere a lock file in /tmp does the same, without the holder's name.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
from pathlib import Path
from typing import IO

from hubd.errors import HubdError


class AnotherSupervisor(HubdError):
    """Another hubd already supervises this stack on this machine."""


class SupervisorClaim:
    def __init__(self, stack_name: str) -> None:
        self.stack_name = stack_name
        self._sock: socket.socket | None = None
        self._file: IO[str] | None = None

    @property
    def abstract_name(self) -> str:
        return f"\0hubd/supervisor/{self.stack_name}"

    def acquire(self) -> None:
        if sys.platform.startswith("linux"):
            self._acquire_abstract()
        else:
            self._acquire_file()

    def _acquire_abstract(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.abstract_name)
        except OSError:
            sock.close()
            raise self._refusal(self._holder()) from None
        sock.listen(8)
        self._sock = sock

    def _holder(self) -> str:
        """'pid N, user U' of the claim's holder, as the kernel tells it."""
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe,
        ):
            probe.settimeout(1)
            probe.connect(self.abstract_name)
            creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
            return f"pid {pid}, {_user_name(uid)}"
        return "another process"

    def _acquire_file(self) -> None:
        import fcntl

        path = Path("/tmp") / f"hubd-supervisor-{self.stack_name}.lock"
        handle = path.open("a")
        with contextlib.suppress(OSError):
            os.chmod(path, 0o666)  # the system service and a person's hubd share it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise self._refusal("another process") from None
        self._file = handle

    def _refusal(self, holder: str) -> AnotherSupervisor:
        return AnotherSupervisor(
            f"stack '{self.stack_name}' is already supervised by another hubd on this machine "
            f"({holder}; the system service?): use that one (`hubd status`), stop it first, "
            "or give this one another `stack_name`"
        )

    def release(self) -> None:
        for held in (self._sock, self._file):
            if held is not None:
                held.close()
        self._sock = self._file = None


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name}"
    except (ImportError, KeyError):
        return f"uid {uid}"
