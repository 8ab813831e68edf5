"""A person using the hub with a browser, done with requests: log in, start a server, use Lab."""

from __future__ import annotations

import time

import requests

SPAWN_DEADLINE_S = 120.0


class LoginRefused(AssertionError):
    pass


def login(base_url: str, username: str, password: str) -> requests.Session:
    """Log in through the hub's login form, as a browser would."""
    session = requests.Session()
    page = session.get(f"{base_url}/hub/login", timeout=30)
    assert page.status_code == 200, page.status_code
    response = session.post(
        f"{base_url}/hub/login",
        data={"username": username, "password": password, "_xsrf": session.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise LoginRefused(f"login as {username} refused: HTTP {response.status_code}")
    return session


def login_refused(base_url: str, username: str, password: str) -> bool:
    try:
        login(base_url, username, password)
    except LoginRefused:
        return True
    return False


def open_lab(session: requests.Session, base_url: str, username: str) -> requests.Response:
    """Start the user's server (if needed) and wait until JupyterLab answers."""
    session.get(f"{base_url}/hub/spawn", timeout=60)
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while True:
        response = session.get(f"{base_url}/user/{username}/lab", timeout=30)
        if response.status_code == 200 and f"/user/{username}/lab" in response.url:
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"JupyterLab for {username} did not come up: {response.url}")
        time.sleep(0.5)


def _xsrf_headers(session: requests.Session, username: str) -> dict[str, str]:
    token = session.cookies.get("_xsrf", path=f"/user/{username}/") or session.cookies.get("_xsrf")
    return {"X-XSRFToken": token or ""}


def write_file(
    session: requests.Session, base_url: str, username: str, name: str, text: str
) -> None:
    response = session.put(
        f"{base_url}/user/{username}/api/contents/{name}",
        json={"type": "file", "format": "text", "content": text},
        headers=_xsrf_headers(session, username),
        timeout=30,
    )
    assert response.status_code in (200, 201), (response.status_code, response.text)


def read_file(session: requests.Session, base_url: str, username: str, name: str) -> str:
    response = session.get(
        f"{base_url}/user/{username}/api/contents/{name}",
        headers=_xsrf_headers(session, username),
        timeout=30,
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return str(response.json()["content"])
