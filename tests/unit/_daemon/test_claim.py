"""One supervisor per stack: the claim is refused while held, free once released."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hubd._daemon.claim import AnotherSupervisor, SupervisorClaim


def test_a_held_claim_is_refused_with_its_holder_and_freed_on_release() -> None:
    name = f"unit{os.getpid()}"
    first = SupervisorClaim(name)
    first.acquire()
    try:
        with pytest.raises(AnotherSupervisor, match=f"pid {os.getpid()}, user "):
            SupervisorClaim(name).acquire()
        SupervisorClaim(name + "-other").acquire()  # another stack is no conflict
    finally:
        first.release()
    again = SupervisorClaim(name)
    again.acquire()
    again.release()


def test_a_killed_holder_leaves_no_stale_claim() -> None:
    name = f"unitkill{os.getpid()}"
    code = (
        "import sys, time\n"
        "from hubd._daemon.claim import SupervisorClaim\n"
        f"claim = SupervisorClaim({name!r})\n"
        "claim.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(AnotherSupervisor, match=f"pid {child.pid}"):
            SupervisorClaim(name).acquire()
    finally:
        child.kill()
        child.wait()
    claim = SupervisorClaim(name)
    claim.acquire()  # SIGKILL released it: nothing stale to clean up
    claim.release()
