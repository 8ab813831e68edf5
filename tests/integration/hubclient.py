"""A person using the hub with a browser, done with requests: log in, start a server, use Lab,
run code in a kernel over its websocket as the notebook page does."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import requests
import websocket

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


def write_bytes(
    session: requests.Session, base_url: str, username: str, name: str, data: bytes
) -> None:
    response = session.put(
        f"{base_url}/user/{username}/api/contents/{name}",
        json={"type": "file", "format": "base64", "content": base64.b64encode(data).decode()},
        headers=_xsrf_headers(session, username),
        timeout=60,
    )
    assert response.status_code in (200, 201), (response.status_code, response.text)


def read_bytes(session: requests.Session, base_url: str, username: str, name: str) -> bytes:
    response = session.get(
        f"{base_url}/user/{username}/api/contents/{name}",
        params={"format": "base64", "type": "file"},
        headers=_xsrf_headers(session, username),
        timeout=60,
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return base64.b64decode(response.json()["content"])


class Kernel:
    """A kernel in someone's server, driven over its websocket like JupyterLab does."""

    def __init__(self, session: requests.Session, base_url: str, username: str) -> None:
        self.session = session
        self.base_url = base_url
        self.username = username
        response = session.post(
            f"{base_url}/user/{username}/api/kernels",
            json={"name": "python3"},
            headers=_xsrf_headers(session, username),
            timeout=60,
        )
        assert response.status_code in (200, 201), (response.status_code, response.text)
        self.id = str(response.json()["id"])
        self.ws = self._connect()

    def _connect(self) -> websocket.WebSocket:
        ws_url = self.base_url.replace("http://", "ws://", 1)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        return websocket.create_connection(
            f"{ws_url}/user/{self.username}/api/kernels/{self.id}/channels",
            header=[
                f"Cookie: {cookies}",
                *(f"{k}: {v}" for k, v in _xsrf_headers(self.session, self.username).items()),
            ],
            timeout=60,
        )

    def execute(self, code: str, timeout_s: float = 60.0) -> str:
        """Run `code`; its printed output (stdout), or AssertionError with the traceback."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": self.username,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": True},
                    "channel": "shell",
                }
            )
        )
        out: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise AssertionError(f"the kernel did not answer within {timeout_s} s")

    def close(self) -> None:
        self.ws.close()
        self.session.delete(
            f"{self.base_url}/user/{self.username}/api/kernels/{self.id}",
            headers=_xsrf_headers(self.session, self.username),
            timeout=30,
        )


def start_kernel(session: requests.Session, base_url: str, username: str) -> str:
    """Start a kernel in the user's server (as opening a notebook does); returns its id."""
    response = session.post(
        f"{base_url}/user/{username}/api/kernels",
        json={},
        headers=_xsrf_headers(session, username),
        timeout=60,
    )
    assert response.status_code in (200, 201), (response.status_code, response.text)
    return str(response.json()["id"])


def kernel_alive(session: requests.Session, base_url: str, username: str, kernel_id: str) -> bool:
    response = session.get(
        f"{base_url}/user/{username}/api/kernels/{kernel_id}",
        headers=_xsrf_headers(session, username),
        timeout=30,
    )
    return response.status_code == 200


class StatusPoller:
    """A person's open JupyterLab polling its server, as Lab does: counts what failed.

    Runs `GET /user/NAME/api/status` every `interval_s` in a thread while in the `with`
    block; `failures` and `outage_s` (longest run of failures) are what the person saw.
    """

    def __init__(
        self, session: requests.Session, base_url: str, username: str, interval_s: float = 0.25
    ) -> None:
        self.session, self.url = session, f"{base_url}/user/{username}/api/status"
        self.headers = _xsrf_headers(session, username)
        self.interval_s = interval_s
        self.requests = self.failures = 0
        self.outage_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _ok(self) -> bool:
        try:
            response = self.session.get(
                self.url, headers=self.headers, timeout=5, allow_redirects=False
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def _run(self) -> None:
        failing_since: float | None = None
        while not self._stop.wait(self.interval_s):
            ok = self._ok()
            now = time.monotonic()
            self.requests += 1
            if ok:
                failing_since = None
                continue
            self.failures += 1
            failing_since = failing_since or now
            self.outage_s = max(self.outage_s, now - failing_since + self.interval_s)
