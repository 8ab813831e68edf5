"""People at work during a fault, measured from their side: shared by the continuity tests and
bench/bench_faults.py.

A `Person` is logged in, has a kernel holding `x = 42`, an open kernel websocket and a saved
file. `Person.watch()` asks `/user/NAME/api/status` every 50 ms, as a busy JupyterLab would, and
counts the requests that failed and the longest stretch without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from tests.integration.hubclient import (
    KernelSocket,
    Outage,
    StatusPoller,
    login,
    open_lab,
    read_file,
    write_file,
)

FILE_NAME = "notes.txt"


class Person:
    def __init__(self, base_url: str, name: str, password: str) -> None:
        self.base_url, self.name = base_url, name
        self.session = login(base_url, name, password)
        self.text = f"{name}'s notes, saved before the faults\n"
        self.respawn()
        write_file(self.session, base_url, name, FILE_NAME, self.text)

    def respawn(self) -> None:
        """Start the server (if it is not running), a kernel holding x, and its websocket."""
        open_lab(self.session, self.base_url, self.name)
        self.socket = KernelSocket.start(self.session, self.base_url, self.name)
        self.kernel_id = self.socket.kernel_id
        assert self.socket.execute("x = 42\nprint(x)").strip() == "42"

    def reconnect(self) -> None:
        """Open a new websocket to the same kernel, as JupyterLab does when one is cut."""
        self.socket.close()
        self.socket = KernelSocket(self.session, self.base_url, self.name, self.kernel_id)

    def kernel_kept_state(self) -> bool:
        """Whether the kernel still holds x, asked over the same websocket."""
        try:
            return self.socket.execute("print(x)", timeout=20).strip() == "42"
        except Exception:  # a closed socket, a dead kernel: the state is lost to this person
            return False

    def file_intact(self) -> bool:
        """Whether the file reads back as saved (False while the server is not there)."""
        try:
            return read_file(self.session, self.base_url, self.name, FILE_NAME) == self.text
        except (AssertionError, requests.RequestException):
            return False

    def watch(self, timeout_s: float = 2.0) -> StatusPoller:
        """Poll this person's server every 50 ms, as a busy JupyterLab does. A request that
        takes longer than `timeout_s` counts as failed (a browser waits much longer: the
        proxy faults, where the front holds requests, measure with a long one)."""
        return StatusPoller(self.session, self.base_url, self.name, timeout_s=timeout_s)

    def close(self) -> None:
        self.socket.close()


@dataclass
class FaultResult:
    fault: str
    outages: dict[str, Outage]
    kernels_kept: dict[str, bool]
    sockets_open: dict[str, bool]
    files_intact: dict[str, bool]

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outages.values())

    @property
    def longest_s(self) -> float:
        return max((o.longest_s for o in self.outages.values()), default=0.0)

    @property
    def slowest_s(self) -> float:
        return max((o.slowest_s for o in self.outages.values()), default=0.0)

    def line(self) -> str:
        errors = sorted({e for o in self.outages.values() for e in o.errors})
        return (
            f"{self.fault:<22} failed {self.failed:>4} of "
            f"{sum(o.requests for o in self.outages.values()):>5}, longest outage "
            f"{self.longest_s:5.2f} s, slowest answer {self.slowest_s:5.2f} s, "
            f"kernels kept {all(self.kernels_kept.values())}, "
            f"websockets open {all(self.sockets_open.values())}, "
            f"files intact {all(self.files_intact.values())} {errors or ''}"
        )


def check_people(fault: str, people: list[Person], watches: list[StatusPoller]) -> FaultResult:
    """What each person sees once the fault is over."""
    return FaultResult(
        fault=fault,
        outages={w.url: w.result for w in watches},
        sockets_open={p.name: p.socket.open for p in people},
        kernels_kept={p.name: p.kernel_kept_state() for p in people},
        files_intact={p.name: p.file_intact() for p in people},
    )
