from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from hubd.errors import UserAccountError
from hubd.stack.accounts import check_password, username_problem
from hubd.stack.hubapi import HubAPI
from hubd.timing import Timing


@pytest.mark.parametrize("name", ["alice", "bob2", "mary-jane", "j.doe", "a_b", "x" * 32])
def test_good_names(name: str) -> None:
    assert username_problem(name) is None


@pytest.mark.parametrize(
    "name, words",
    [
        ("", "cannot be empty"),
        ("Alice", "capital letters; use 'alice'"),
        ("2pac", "must start with a letter"),
        ("../../etc/passwd", "must start with a letter"),
        ("a/b", "may only hold"),
        ("a b", "may only hold"),
        ("a--b", "may only hold"),
        ("ab-", "may only hold"),
        ("x" * 33, "longer than 32"),
        ("zoë", "may only hold"),
        ("null\0byte", "may only hold"),
        ("$(reboot)", "must start with a letter"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, words: str) -> None:
    problem = username_problem(name)
    assert problem is not None and words in problem


def test_password_minimum_length() -> None:
    with pytest.raises(UserAccountError, match="at least 8"):
        check_password("1234567")
    assert check_password("12345678") == "12345678"


class _PagingHub:
    """JupyterHub's paginated GET /users, 50 per page at most (api_page_max_limit)."""

    def __init__(self, count: int) -> None:
        self.users = [{"name": f"u{i:03}", "admin": i == count - 1} for i in range(count)]
        self.requests: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests.append(url)
        query = dict(part.split("=") for part in url.split("?", 1)[1].split("&"))
        offset, limit = int(query["offset"]), min(int(query["limit"]), 50)
        assert kwargs["headers"]["Accept"] == "application/jupyterhub-pagination+json"
        items = self.users[offset : offset + limit]
        following = offset + limit < len(self.users)
        body = {
            "items": items,
            "_pagination": {
                "offset": offset,
                "limit": limit,
                "total": len(self.users),
                "next": {"offset": offset + limit, "limit": limit} if following else None,
            },
        }
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(body).encode()
        return response


def test_every_user_is_listed_across_the_hubs_pages() -> None:
    api = HubAPI("http://127.0.0.1:1/", "token", Timing())
    hub = _PagingHub(123)
    api.session = hub  # type: ignore[assignment]
    users = api.list_users()
    assert [u["name"] for u in users] == [u["name"] for u in hub.users]
    assert len(hub.requests) == 3
    # The admin is on the last page: "no admin yet" would be wrong without paging.
    assert users[-1]["admin"] is True
