"""Runs inside the hub container: hubd's authenticator.

NativeAuthenticator keeps accounts (bcrypt hashes) in the hub's own database, gives people a
login page, a change-password page and a lockout after failed logins. What it lacks is a way
for the owner to create an account *with* a password (its signup form makes people pick their
own, and then waits for approval). This subclass adds that as a small API on the hub, usable
only with a token holding the custom scope `custom:hubd-accounts`, which only hubd's own
service holds (not `admin:users`: every hub admin and every token an admin makes has that), and
serves only the pages hubd uses (login, change your own password): signup, the approval pages
(which change state on GET) and the admin's change-someone-else's-password page are gone, so
nobody gets in without an account the owner created.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import bcrypt
from jinja2 import ChoiceLoader, FileSystemLoader
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.apihandlers.hub import ShutdownAPIHandler
from jupyterhub.apihandlers.proxy import ProxyAPIHandler
from jupyterhub.apihandlers.services import ServiceAPIHandler
from jupyterhub.apihandlers.users import UserAPIHandler, UserListAPIHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.orm import UserInfo
from tornado import web
from tornado.escape import url_escape
from tornado.httputil import url_concat

# Held by hubd's service role only (jupyterhub_config.py declares and grants it).
ACCOUNTS_SCOPE = "custom:hubd-accounts"
# NativeAuthenticator's pages that hubd keeps; every other one is not served at all.
KEPT_NATIVE_ROUTES = ("/login", "/change-password")
# hubd's own login page (templates/hubd-login.html): the username kept after a failed try,
# autocomplete hints for password managers, and the lockout told as it is.
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
LOGIN_TEMPLATE = "hubd-login.html"
INVALID_LOGIN = "Invalid username or password."
# Failed sign-ins are counted for names without an account too (see `authenticate`); past
# this many names, the ones whose lockout is over are forgotten, so strangers trying names
# cannot make the hub's memory grow without end.
MAX_TRACKED_NAMES = 10_000


def locked_message(username: str, seconds_left: int, allowed_failed_logins: int) -> str:
    """What the login page says to anyone who signs in as a locked name: the same for every
    name, whether it has an account or not, and whatever password was given, so the page
    tells neither which accounts exist nor whether a password was right."""
    minutes = max(1, -(-seconds_left // 60))
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return (
        f"This account is locked after {allowed_failed_logins} failed sign-ins. "
        f"Try again in {wait}, or ask the owner of this hub to unlock it now "
        f'(with "hubd user unlock {username}", or Unlock under Users in the hubd tray).'
    )


class _NoTimer:
    def start(self) -> _NoTimer:
        return self

    def stop(self, send: bool = True) -> None:
        return None


class _NoStats:
    def timer(self, _name: str) -> _NoTimer:
        return _NoTimer()


class LoginHandler(NativeLoginHandler):  # type: ignore[misc]
    """NativeAuthenticator 1.3's login page, mended for JupyterHub 6.

    JupyterHub 6 dropped the handlers' statsd client (NativeAuthenticator still times logins
    with it) and renders login errors synchronously with an extra `sync` keyword.
    """

    # Only where JupyterHub has none: JupyterHub 5's own handlers still count with statsd.
    if not hasattr(NativeLoginHandler, "statsd"):
        statsd = _NoStats()

    _template_dir_added = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # hubd's templates first, as NativeAuthenticator adds its own (handlers.LocalBase).
        if not LoginHandler._template_dir_added:
            env = self.settings["jinja2_env"]
            env.loader = ChoiceLoader([FileSystemLoader([TEMPLATE_DIR]), env.loader])
            LoginHandler._template_dir_added = True

    async def post(self) -> None:
        """NativeAuthenticator's login, telling a locked account from a wrong password."""
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        username = data.get("username", "")
        auth: HubdAuthenticator = self.authenticator
        seconds_left = auth.seconds_locked(username)
        error = (
            INVALID_LOGIN
            if seconds_left is None
            else locked_message(
                auth.normalize_username(username), seconds_left, auth.allowed_failed_logins
            )
        )
        self.finish(await self._render(login_error=error, username=username))

    def _render(
        self,
        login_error: str | None = None,
        username: str | None = None,
        sync: bool = False,
        **_ignored: Any,
    ) -> Any:
        return self.render_template(
            LOGIN_TEMPLATE,
            sync=sync,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url),
                {"next": self.get_argument("next", "")},
            ),
        )


class HubdAuthenticator(NativeAuthenticator):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Signup is off, so only accounts hubd created can authenticate at all; every such
        # account may use the hub.
        self.enable_signup = False
        self.allow_all = True

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> str | None:
        username = self.normalize_username(str(data.get("username") or ""))
        unknown = self.get_user(username) is None
        blocked = bool(self.allowed_failed_logins) and self.is_blocked(username)
        if unknown or blocked:
            # The same bcrypt work as checking a real password: how long a login takes tells
            # no one whether the name exists or is locked.
            _spend_a_password_check(str(data.get("password") or ""))
            if unknown and self.allowed_failed_logins and not blocked:
                # NativeAuthenticator counts failures only for existing accounts, so "locked"
                # would tell a stranger which names exist: count them for every name.
                self._forget_expired()
                self.add_login_attempt(username)
            return None
        result: str | None = await super().authenticate(handler, data)
        return result

    def seconds_locked(self, username: str) -> int | None:
        """How long sign-ins as USERNAME stay refused, None when they are not."""
        username = self.normalize_username(username)
        if not self.allowed_failed_logins or not self.is_blocked(username):
            return None
        since = datetime.now() - self.login_attempts[username]["time"]
        wait: int = self.seconds_before_next_try
        return max(1, wait - int(since.total_seconds()))

    def _forget_expired(self) -> None:
        if len(self.login_attempts) < MAX_TRACKED_NAMES:
            return
        now = datetime.now()
        for name, attempt in list(self.login_attempts.items()):
            if (now - attempt["time"]).total_seconds() > self.seconds_before_next_try:
                del self.login_attempts[name]

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        native = [
            (path, LoginHandler if path == r"/login" else handler)
            for path, handler in super().get_handlers(app)
            if path in KEPT_NATIVE_ROUTES
        ]
        # The authenticator's handlers come before JupyterHub's own: these take the owner's
        # share of JupyterHub's API away from admins (see docs/admins.md).
        return [
            *native,
            (r"/api/hubd/accounts", AccountsHandler),
            (r"/api/hubd/accounts/([^/]+)/password", PasswordHandler),
            (r"/api/hubd/accounts/([^/]+)/unlock", UnlockHandler),
            (r"/api/proxy", OwnerProxyHandler),
            (r"/api/services/([^/]+)", OwnerServiceHandler),
            (r"/api/users", OwnerUserListHandler),
            (r"/api/users/([^/]+)", OwnerUserHandler),
            (r"/api/shutdown", OwnerShutdownHandler),
        ]

    def password_problem(self, password: str) -> str | None:
        if len(password) < self.minimum_password_length:
            return f"password must be at least {self.minimum_password_length} characters"
        if self.check_common_password and self.is_password_common(password):
            return "password is too common; choose another"
        return None


def _hash(password: str) -> bytes:
    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    return hashed


_DECOY: list[bytes] = []


def _spend_a_password_check(password: str) -> None:
    """The work of checking `password` against an account's hash (same bcrypt cost as the
    accounts' hashes, both from bcrypt.gensalt()), against a hash no password matches."""
    if not _DECOY:
        _DECOY.append(_hash("hubd: no such account"))
    bcrypt.checkpw(password.encode()[:72], _DECOY[0])


def _require_hubd(handler: Any) -> None:
    if ACCOUNTS_SCOPE not in handler.parsed_scopes:
        raise web.HTTPError(403, f"only hubd's own service (scope {ACCOUNTS_SCOPE}) may do this")


class OwnerProxyHandler(ProxyAPIHandler):  # type: ignore[misc]
    """Repointing the hub's proxy client (PATCH) would hand the proxy's token to whatever
    address an admin names: hubd's alone. Reading and re-syncing routes stay the admins'."""

    async def patch(self) -> None:
        _require_hubd(self)
        await super().patch()


class OwnerServiceHandler(ServiceAPIHandler):  # type: ignore[misc]
    """Services (and their tokens, which outlive any admin) are made and removed by hubd."""

    async def post(self, service_name: str) -> None:
        _require_hubd(self)
        await super().post(service_name)

    async def delete(self, service_name: str) -> None:
        _require_hubd(self)
        await super().delete(service_name)


class OwnerUserListHandler(UserListAPIHandler):  # type: ignore[misc]
    """Accounts are the owner's: made by hubd (with a password), never by an admin."""

    async def post(self) -> None:
        _require_hubd(self)
        await super().post()


class OwnerUserHandler(UserAPIHandler):  # type: ignore[misc]
    """Making, removing and renaming accounts and making or unmaking admins are the owner's."""

    async def post(self, user_name: str) -> None:
        _require_hubd(self)
        await super().post(user_name)

    async def delete(self, user_name: str) -> None:
        _require_hubd(self)
        await super().delete(user_name)

    async def patch(self, user_name: str) -> None:
        data = self.get_json_body()
        if not isinstance(data, dict) or {"admin", "name"} & set(data):
            _require_hubd(self)
        await super().patch(user_name)


class OwnerShutdownHandler(ShutdownAPIHandler):  # type: ignore[misc]
    """Stopping the hub (and with it everyone's logins) is the owner's, via hubd."""

    async def post(self) -> None:
        _require_hubd(self)
        await super().post()


class _AccountHandler(APIHandler):  # type: ignore[misc]
    async def prepare(self) -> None:
        # Checked per request rather than with `needs_scope`: that decorator insists, when this
        # module is imported, on scopes JupyterHub defines only later (custom scopes come from
        # the config during start-up).
        await super().prepare()
        if ACCOUNTS_SCOPE not in self.parsed_scopes:
            raise web.HTTPError(
                403, f"only hubd's own service (scope {ACCOUNTS_SCOPE}) may do this"
            )

    @property
    def hubd_auth(self) -> HubdAuthenticator:
        auth = self.authenticator
        if not isinstance(auth, HubdAuthenticator):
            raise web.HTTPError(500, "the hub is not running hubd's authenticator")
        return auth

    def body(self) -> dict[str, Any]:
        data = self.get_json_body() or {}
        if not isinstance(data, dict):
            raise web.HTTPError(400, "body must be a JSON object")
        return data

    def checked_password(self, data: dict[str, Any]) -> str:
        password = data.get("password")
        if not isinstance(password, str):
            raise web.HTTPError(400, "password is required")
        problem = self.hubd_auth.password_problem(password)
        if problem:
            raise web.HTTPError(400, problem)
        return password


class AccountsHandler(_AccountHandler):
    async def post(self) -> None:
        data = self.body()
        raw_name = data.get("name")
        if not isinstance(raw_name, str):
            raise web.HTTPError(400, "name is required")
        name = self.hubd_auth.normalize_username(raw_name)
        if name != raw_name or not self.hubd_auth.validate_username(name):
            raise web.HTTPError(400, f"invalid username {raw_name!r}")
        if UserInfo.find(self.db, name) is not None or self.find_user(name) is not None:
            raise web.HTTPError(409, f"user {name!r} already exists")
        password = self.checked_password(data)
        self.db.add(UserInfo(username=name, password=_hash(password), is_authorized=True))
        self.db.commit()
        user = self.user_from_username(name)
        user.admin = bool(data.get("admin", False))
        self.db.commit()
        self.set_status(201)
        self.write(json.dumps(self.user_model(user)))


class PasswordHandler(_AccountHandler):
    async def put(self, name: str) -> None:
        info = UserInfo.find(self.db, name)
        if info is None:
            raise web.HTTPError(404, f"no user named {name!r}")
        info.password = _hash(self.checked_password(self.body()))
        # The owner's new password is the owner's say-so: it also repairs an account that was
        # de-authorized (NativeAuthenticator refuses those even with the right password) and
        # lifts a lockout from earlier failed attempts.
        info.is_authorized = True
        self.db.commit()
        self.hubd_auth.login_attempts.pop(name, None)
        self.set_status(204)


class UnlockHandler(_AccountHandler):
    """Lift a lockout now. The lockout stays as it is for everybody else; only the owner (with
    hubd's scope) can cut it short, so a stranger who keeps an account locked cannot keep its
    owner out."""

    async def post(self, name: str) -> None:
        if UserInfo.find(self.db, name) is None:
            raise web.HTTPError(404, f"no user named {name!r}")
        was_locked = self.hubd_auth.is_blocked(name)
        self.hubd_auth.login_attempts.pop(name, None)
        self.set_status(200)
        self.write(json.dumps({"name": name, "was_locked": bool(was_locked)}))
