from __future__ import annotations

import pytest

from hubd.errors import UserAccountError
from hubd.stack.accounts import check_password, username_problem


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
