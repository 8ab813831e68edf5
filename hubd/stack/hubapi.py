"""Talking to the running hub's REST API as hubd's own service (token on the data volume)."""

from __future__ import annotations

from typing import Any

import requests

from hubd.errors import StackError, UserAccountError
from hubd.timing import Timing

# The hub pages its lists (JupyterHub's api_page_max_limit is 200 by default); asking with
# this media type gives the page's position and the next one's.
USERS_PAGE_SIZE = 200
PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


class HubAPI:
    def __init__(self, base_url: str, token: str, timing: Timing) -> None:
        # A hub that does not answer within this is not going to; the daemon's health probe
        # decides about hangs, this only bounds one call.
        self.timeout_s = timing.hub_api_timeout_s
        self.base_url = base_url.rstrip("/") + "/hub/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def _call(
        self,
        method: str,
        path: str,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                timeout=self.timeout_s,
                headers=headers,
            )
        except requests.RequestException as exc:
            raise StackError(f"the hub's API did not answer: {exc}") from None
        if response.status_code in ok:
            return response
        message = _hub_message(response)
        if response.status_code in (400, 404, 409):
            raise UserAccountError(message)
        raise StackError(f"the hub's API refused {method} {path}: {message}")

    def list_users(self) -> list[dict[str, Any]]:
        """Every user: the hub answers in pages (a limit per request), so follow them."""
        users: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self._call(
                "GET", f"/users?offset={offset}&limit={USERS_PAGE_SIZE}", headers=PAGINATED
            ).json()
            if isinstance(page, list):  # a hub too old to paginate gives everything at once
                return users + page
            users += page.get("items") or []
            following = (page.get("_pagination") or {}).get("next")
            offset = int(following["offset"]) if following else None
        return users

    def get_user(self, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/users/{name}", ok=(200, 404))
        return None if response.status_code == 404 else dict(response.json())

    def create_account(self, name: str, password: str, admin: bool) -> dict[str, Any]:
        return dict(
            self._call(
                "POST", "/hubd/accounts", {"name": name, "password": password, "admin": admin}
            ).json()
        )

    def set_password(self, name: str, password: str) -> None:
        self._call("PUT", f"/hubd/accounts/{name}/password", {"password": password})

    def unlock_account(self, name: str) -> bool:
        """Lift a lockout after failed logins; True if the account was locked."""
        response = self._call("POST", f"/hubd/accounts/{name}/unlock")
        return bool(response.json().get("was_locked"))

    def start_server(self, name: str, options: dict[str, Any] | None = None) -> bool:
        """Ask the hub to start someone's server with the options they picked (the image);
        False when it will not now (it still counts one as running or starting: 400)."""
        response = self._call("POST", f"/users/{name}/server", options or {}, ok=(201, 202, 400))
        return response.status_code != 400

    def server_options(self, name: str) -> dict[str, Any]:
        """What the person picked when they started their running server (the spawn form)."""
        user = self.get_user(name) or {}
        server = (user.get("servers") or {}).get("") or {}
        return dict(server.get("user_options") or {})

    def stop_server(self, name: str) -> None:
        """Ask the hub to stop someone's server (it may answer before the server is down)."""
        self._call("DELETE", f"/users/{name}/server")

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{name}")

    def refresh_proxy_routes(self) -> None:
        """Have the hub check the proxy's routing table and add what is missing."""
        self._call("POST", "/proxy")

    def proxy_routes(self) -> dict[str, Any]:
        """The proxy's routing table as the hub reads it (needs the `proxy` scope)."""
        return dict(self._call("GET", "/proxy").json())


def _hub_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return f"HTTP {response.status_code}"
