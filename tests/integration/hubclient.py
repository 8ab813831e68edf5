"""A person using the hub with a browser, done with requests: log in, start a server, use Lab,
run code in a kernel over its websocket as the notebook page does."""

from __future__ import annotations

import base64
import html
import json
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket

from tests.patience import patient

SPAWN_DEADLINE_S = patient(120.0)


class LoginRefused(AssertionError):
    pass


def login(
    base_url: str, username: str, password: str, session: requests.Session | None = None
) -> requests.Session:
    """Log in through the hub's login form, as a browser would (`session`: e.g. one that
    checks hubd's certificate, hubd.tls.client.session_for)."""
    session = session or requests.Session()
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


def spawn_with_image(session: requests.Session, base_url: str, username: str, image: str) -> str:
    """Pick `image` on the spawn form (config `allowed_images`) and submit it, as a browser
    does. Returns what the page then says when the start was refused at once (the form comes
    back with the hub's message), else ""."""
    response = session.post(
        f"{base_url}/hub/spawn/{username}",
        data={"image": image, "_xsrf": session.cookies.get("_xsrf", path="/hub/") or ""},
        timeout=120,
    )
    if f"/user/{username}/" in response.url or "/spawn-pending/" in response.url:
        return ""
    return page_text(response.text)


def spawn_refusal(session: requests.Session, base_url: str, username: str) -> str:
    """Try to start the server without a form (no `allowed_images`) and return the refusal
    the spawn page shows, or "" if the server started."""
    response = session.get(f"{base_url}/hub/spawn", timeout=120)
    if response.status_code == 200 and f"/user/{username}/" in response.url:
        return ""
    return page_text(response.text)


def page_text(page: str) -> str:
    """An HTML page's text, tags dropped and entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def stop_server(session: requests.Session, base_url: str, username: str) -> None:
    """Stop one's own server, as the hub's home page button does."""
    response = session.delete(
        f"{base_url}/hub/api/users/{username}/server",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
        timeout=120,
    )
    assert response.status_code in (202, 204), (response.status_code, response.text)
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while server_running(session, base_url, username):
        if time.monotonic() > deadline:
            raise AssertionError(f"{username}'s server did not stop")
        time.sleep(0.5)


def server_running(session: requests.Session, base_url: str, username: str) -> bool:
    """Whether the hub counts the person's server as running (or starting)."""
    response = session.get(
        f"{base_url}/hub/api/users/{username}",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
        timeout=30,
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return bool(response.json().get("servers"))


def _xsrf_headers(session: requests.Session, username: str) -> dict[str, str]:
    token = session.cookies.get("_xsrf", path=f"/user/{username}/") or session.cookies.get("_xsrf")
    return {"X-XSRFToken": token or ""}


def _put_contents(
    session: requests.Session,
    base_url: str,
    username: str,
    name: str,
    model: dict[str, str],
    timeout_s: float,
) -> None:
    response = session.put(
        f"{base_url}/user/{username}/api/contents/{name}",
        json={"type": "file", **model},
        headers=_xsrf_headers(session, username),
        timeout=timeout_s,
    )
    assert response.status_code in (200, 201), (response.status_code, response.text)


def _get_contents(
    session: requests.Session,
    base_url: str,
    username: str,
    name: str,
    timeout_s: float,
    **params: str,
) -> str:
    response = session.get(
        f"{base_url}/user/{username}/api/contents/{name}",
        params=params,
        headers=_xsrf_headers(session, username),
        timeout=timeout_s,
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return str(response.json()["content"])


def write_file(
    session: requests.Session, base_url: str, username: str, name: str, text: str
) -> None:
    _put_contents(session, base_url, username, name, {"format": "text", "content": text}, 30)


def read_file(session: requests.Session, base_url: str, username: str, name: str) -> str:
    return _get_contents(session, base_url, username, name, 30)


def write_bytes(
    session: requests.Session, base_url: str, username: str, name: str, data: bytes
) -> None:
    content = base64.b64encode(data).decode()
    _put_contents(session, base_url, username, name, {"format": "base64", "content": content}, 60)


def read_bytes(session: requests.Session, base_url: str, username: str, name: str) -> bytes:
    content = _get_contents(session, base_url, username, name, 60, format="base64", type="file")
    return base64.b64decode(content)


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


class KernelSocket:
    """An open kernel websocket, as JupyterLab holds one for each notebook.

    Like a browser, it reads all the time on a thread of its own, which also answers the
    server's pings: jupyter_server closes a websocket whose pings go unanswered.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        username: str,
        kernel_id: str,
        sslopt: dict[str, Any] | None = None,
    ) -> None:
        """`sslopt`: websocket-client's TLS options over HTTPS (hubd's root as `ca_certs`, the
        hub's name as `server_hostname`: bench/bench_https.py)."""
        self.kernel_id = kernel_id
        self.session_id = uuid.uuid4().hex
        url = base_url.replace("http", "ws", 1)
        cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        self.ws = websocket.create_connection(
            f"{url}/user/{username}/api/kernels/{kernel_id}/channels?session_id={self.session_id}",
            header=[
                f"Cookie: {cookies}",
                *[f"{k}: {v}" for k, v in _xsrf_headers(session, username).items()],
            ],
            timeout=30,
            sslopt=sslopt,
        )
        self.ws.settimeout(None)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="kernel-socket", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        session: requests.Session,
        base_url: str,
        username: str,
        sslopt: dict[str, Any] | None = None,
    ) -> KernelSocket:
        """Start a kernel in the user's server and open its websocket, as a new notebook does."""
        kernel = start_kernel(session, base_url, username)
        return cls(session, base_url, username, kernel, sslopt)

    def _read(self) -> None:
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    break
                self.messages.put(json.loads(text))
        except (websocket.WebSocketException, OSError, ValueError):
            pass
        self.closed.set()

    @property
    def open(self) -> bool:
        """Whether the websocket has stayed open (and so was never cut) since it was made."""
        return not self.closed.is_set() and bool(self.ws.connected)

    def execute(self, code: str, timeout: float = 30) -> str:
        """Run `code` in the kernel; returns what it printed or evaluated to."""
        if not self.open:
            raise AssertionError("the kernel websocket was closed")
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self.session_id,
                        "username": "",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind == "execute_result":
                output.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                raise AssertionError(f"the kernel raised {content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(output)
        raise AssertionError(f"no answer from the kernel to {code!r} within {timeout:.0f} s")

    def close(self) -> None:
        self.ws.close()
        self._reader.join(timeout=5)


def kernel_alive(session: requests.Session, base_url: str, username: str, kernel_id: str) -> bool:
    response = session.get(
        f"{base_url}/user/{username}/api/kernels/{kernel_id}",
        headers=_xsrf_headers(session, username),
        timeout=30,
    )
    return response.status_code == 200


@dataclass
class Outage:
    requests: int = 0
    failed: int = 0
    longest_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    # The slowest request that succeeded: a request held while the proxy restarts (the
    # front waits for it) is not a failure, but the person waits that long.
    slowest_s: float = 0.0


class StatusPoller:
    """A person's open JupyterLab polling its server, as Lab does: counts what failed.

    Asks `GET /user/NAME/api/status` every `interval_s` on a thread of its own (with its own
    session holding the person's cookies) while in the `with` block; `result` counts the
    requests that failed and the longest stretch without an answer.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        username: str,
        interval_s: float = 0.05,
        timeout_s: float = 2.0,
    ) -> None:
        self.url = f"{base_url}/user/{username}/api/status"
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.session = requests.Session()
        self.session.cookies.update(session.cookies)
        self.result = Outage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"status-poller-{username}")

    def __enter__(self) -> StatusPoller:
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
                self.result.slowest_s = max(self.result.slowest_s, now - started)
                if failing_since is not None:
                    self.result.longest_s = max(self.result.longest_s, now - failing_since)
                failing_since = None
            else:
                self.result.failed += 1
                if len(self.result.errors) < 5:
                    self.result.errors.append(why)
                failing_since = started if failing_since is None else failing_since
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        if failing_since is not None:
            self.result.longest_s = max(self.result.longest_s, time.monotonic() - failing_since)

    def _ask(self) -> tuple[bool, str]:
        try:
            response = self.session.get(self.url, timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        return response.status_code == 200, f"HTTP {response.status_code}"
