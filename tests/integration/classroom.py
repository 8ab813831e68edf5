"""A class using one hub: many accounts, people arriving and logging in, each waiting for their
turn as a person would (the hub's "please wait" page when it is busy) until their Lab answers.
Used by tests/integration/test_class.py and bench/bench_class.py."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from hubd.stack import Stack
from hubd.stack.accounts import Accounts
from tests.integration.hubclient import SPAWN_DEADLINE_S, login, page_text

PASSWORD = "tulip-orbit-candle"
# How long a person waits before trying again when the hub says it is busy (its page
# reloads itself after 10 s; a script can be a little quicker without hurting anybody).
BUSY_RETRY_S = 2.0


def people(count: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(1, count + 1)]


def add_accounts(stack: Stack, names: Iterable[str]) -> None:
    """One after another: the hub hashes each password (bcrypt) on its one event loop, so
    requests sent at once only queue there, and the last ones time out on a loaded machine."""
    accounts = Accounts(stack)
    for name in names:
        accounts.add_user(name, PASSWORD)


@dataclass
class Arrival:
    name: str
    session: requests.Session
    login_to_lab_s: float
    waited_turns: int  # how often the hub said "please wait"


def start_server(session: requests.Session, base_url: str, name: str) -> int:
    """Ask for the server; while the hub is full, wait as its page asks. Returns how often
    the hub said to wait; fails on any other refusal with the page's text."""
    turns = 0
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while True:
        response = session.get(f"{base_url}/hub/spawn", timeout=60)
        if response.status_code != 429:
            break
        text = page_text(response.text)
        assert "You are waiting for your turn" in text, text
        turns += 1
        assert time.monotonic() < deadline, f"{name} waited too long for a turn"
        time.sleep(BUSY_RETRY_S)
    assert response.status_code == 200, (name, response.status_code, page_text(response.text))
    return turns


# Only a hang guard, as long as the hub's own spawn timeout: a class on a machine that many
# other things load (CI) takes minutes, not seconds, per Lab.
LAB_DEADLINE_S = 600.0


def wait_for_lab(session: requests.Session, base_url: str, name: str) -> None:
    deadline = time.monotonic() + LAB_DEADLINE_S
    while True:
        response = session.get(f"{base_url}/user/{name}/lab", timeout=60)
        if response.status_code == 200 and f"/user/{name}/lab" in response.url:
            return
        assert "/spawn-pending/" in response.url or "/user/" in response.url, response.url
        assert time.monotonic() < deadline, f"JupyterLab for {name} did not come up"
        time.sleep(1.0)


def arrive(base_url: str, name: str) -> Arrival:
    """Log in and get to one's Lab, as a person at a browser does."""
    started = time.monotonic()
    session = login(base_url, name, PASSWORD)
    turns = start_server(session, base_url, name)
    wait_for_lab(session, base_url, name)
    return Arrival(name, session, time.monotonic() - started, turns)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
