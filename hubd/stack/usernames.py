"""What a username and a password must be (the hub's NativeAuthenticator and hubd agree).

Apart from accounts.py so that the CLI can check a name before anything loads the Docker SDK.
"""

from __future__ import annotations

import re

from hubd.config import MIN_PASSWORD_CHARS
from hubd.errors import UserAccountError

MAX_USERNAME_LENGTH = 32
_USERNAME_RE = re.compile(r"^[a-z][a-z0-9]*([._-][a-z0-9]+)*$")


def suggest_username(name: str) -> str | None:
    """A valid username close to `name` ('Bad Name' -> 'bad-name'), or None if none is near."""
    text = name.strip().lower()
    text = re.sub(r"[^a-z0-9._-]+", "-", text)  # spaces and other characters: one '-'
    text = re.sub(r"([._-])[._-]+", r"\1", text)  # one separator at a time
    text = re.sub(r"^[^a-z]+", "", text)  # must start with a letter
    text = text[:MAX_USERNAME_LENGTH].rstrip("._-")
    return text if text and _USERNAME_RE.match(text) else None


def username_problem(name: str) -> str | None:
    """Why `name` cannot be a username, or None if it can. Where a valid name is near, the
    message offers it."""
    if not name:
        return "a username cannot be empty"
    if _USERNAME_RE.match(name) and len(name) <= MAX_USERNAME_LENGTH:
        return None
    close = suggest_username(name)
    offer = f"; use {close!r}" if close and close != name else ""
    if len(name) > MAX_USERNAME_LENGTH:
        return f"username {name[:40]!r} is longer than {MAX_USERNAME_LENGTH} characters{offer}"
    if name != name.lower():
        return f"username {name!r} has capital letters{offer}"
    if not name[0].isascii() or not name[0].isalpha():
        return f"username {name!r} must start with a letter a-z{offer}"
    return (
        f"username {name!r} may only hold letters a-z, digits and single '.', '_' "
        f"or '-' between them{offer}"
    )


def check_username(name: str) -> str:
    problem = username_problem(name)
    if problem:
        raise UserAccountError(problem)
    return name


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must be at least {MIN_PASSWORD_CHARS} characters"
    return None


def check_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise UserAccountError(problem)
    return password
