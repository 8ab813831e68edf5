"""People at work during a fault, measured from their side: shared by the continuity tests and
bench/bench_faults.py.

A `Person` is logged in, has a kernel holding `x = 42`, an open kernel websocket and a saved
file. A `Watch` asks `/user/NAME/api/status` every 50 ms, as a busy JupyterLab would, and
counts the requests that failed and the longest stretch without an answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from tests.integration.hubclient import (
    KernelSocket,
    login,
    open_lab,
    read_file,
    start_kernel,
    write_file,
)

POLL_INTERVAL_S = 0.05
POLL_TIMEOUT_S = 2.0
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
        self.kernel_id = start_kernel(self.session, self.base_url, self.name)
        self.socket = KernelSocket(self.session, self.base_url, self.name, self.kernel_id)
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

    def close(self) -> None:
        self.socket.close()


@dataclass
class Outage:
    requests: int = 0
    failed: int = 0
    longest_s: float = 0.0
    errors: list[str] = field(default_factory=list)


class Watch:
    """Polls one person's `/user/NAME/api/status` on a thread of its own."""

    def __init__(self, person: Person) -> None:
        self.url = f"{person.base_url}/user/{person.name}/api/status"
        self.session = requests.Session()
        self.session.cookies.update(person.session.cookies)
        self.result = Outage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{person.name}")

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.session.close()

    def _run(self) -> None:
        failing_since: float | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            ok, why = self._ask()
            now = time.monotonic()
            self.result.requests += 1
            if ok:
                if failing_since is not None:
                    self.result.longest_s = max(self.result.longest_s, now - failing_since)
                failing_since = None
            else:
                self.result.failed += 1
                if len(self.result.errors) < 5:
                    self.result.errors.append(why)
                failing_since = started if failing_since is None else failing_since
            self._stop.wait(max(0.0, POLL_INTERVAL_S - (time.monotonic() - started)))
        if failing_since is not None:
            self.result.longest_s = max(self.result.longest_s, time.monotonic() - failing_since)

    def _ask(self) -> tuple[bool, str]:
        try:
            response = self.session.get(self.url, timeout=POLL_TIMEOUT_S, allow_redirects=False)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        return response.status_code == 200, f"HTTP {response.status_code}"


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

    def line(self) -> str:
        errors = sorted({e for o in self.outages.values() for e in o.errors})
        return (
            f"{self.fault:<22} failed {self.failed:>4} of "
            f"{sum(o.requests for o in self.outages.values()):>5}, longest outage "
            f"{self.longest_s:5.2f} s, kernels kept {all(self.kernels_kept.values())}, "
            f"websockets open {all(self.sockets_open.values())}, "
            f"files intact {all(self.files_intact.values())} {errors or ''}"
        )


def check_people(fault: str, people: list[Person], watches: list[Watch]) -> FaultResult:
    """What each person sees once the fault is over."""
    return FaultResult(
        fault=fault,
        outages={w.url: w.result for w in watches},
        sockets_open={p.name: p.socket.open for p in people},
        kernels_kept={p.name: p.kernel_kept_state() for p in people},
        files_intact={p.name: p.file_intact() for p in people},
    )
