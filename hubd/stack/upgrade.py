"""`hubd upgrade`: newer images behind a health gate, and the previous ones back if it fails.

1. plan: pull the configured images (unless told not to), build the hub image on the new
   base, and read the package versions in the old and new images: what would change.
2. apply: copy the hub database (SQLite online backup), replace the hub container with one on
   the new image started with `--upgrade-db`, then gate on what people need: /hub/health,
   the login page rendering its form (hubd's NativeAuthenticator mend for JupyterHub 6),
   a real login of a throwaway account followed by a call to the hub API with that login,
   and the proxy still routing to every server that was running.
3. if the gate fails within the deadline: keep the new hub's log, put the database copy
   back, start the previous hub image on the previous pins, and say why in one line.

People's servers are separate containers and the hub does not stop them on its way down
(`cleanup_servers = False`), so they keep running through both a switch and a rollback.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from docker.errors import DockerException

from hubd.errors import HubdError, ImageError, StackError
from hubd.stack.hubdb import back_up_for_upgrade, restore_upgrade_copy
from hubd.stack.images import (
    ensure_hub_image,
    ensure_user_images,
    image_id,
    image_present,
    pull_image,
)
from hubd.stack.lifecycle import Stack
from hubd.stack.naming import ROLE_HUB_IMAGE
from hubd.stack.pins import ImagePins, PinStore
from hubd.stack.versions import HUB_PACKAGES, USER_PACKAGES, package_versions

log = logging.getLogger(__name__)

# The throwaway account of the login check: a valid username with a random tail, so it can
# never be (and never delete) someone's real account.
PROBE_USER_PREFIX = "hubd-upgrade-check-"


class UpgradeRolledBack(HubdError):
    """The new version failed the health gate; the previous one runs again."""


class UpgradeFailed(HubdError):
    """The upgrade failed and so did the rollback: the hub needs a look."""


@dataclass(frozen=True)
class Change:
    """One line of what an upgrade changes, e.g. ("JupyterHub", "5.4.3", "6.1.1")."""

    what: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.what}: {self.old or '-'} -> {self.new or '-'}"


@dataclass(frozen=True)
class UpgradePlan:
    current: ImagePins
    target: ImagePins
    changes: tuple[Change, ...] = ()

    @property
    def up_to_date(self) -> bool:
        return self.current == self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current.to_json(),
            "target": self.target.to_json(),
            "changes": [[c.what, c.old, c.new] for c in self.changes],
            "up_to_date": self.up_to_date,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpgradePlan:
        return cls(
            current=ImagePins.from_json(data["current"]),
            target=ImagePins.from_json(data["target"]),
            changes=tuple(Change(str(w), str(o), str(n)) for w, o, n in data.get("changes", [])),
        )


@dataclass
class UpgradeResult:
    changes: list[str] = field(default_factory=list)
    database_copy: str = ""


class Upgrader:
    def __init__(self, stack: Stack, pins: PinStore, log_dir: Path) -> None:
        self.stack = stack
        self.pins = pins
        self.log_dir = log_dir
        self._versions: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    @property
    def client(self) -> Any:
        return self.stack.client

    # ------------------------------------------------------------------ plan

    def current_pins(self) -> ImagePins:
        current = self.pins.load()
        hub = self.stack.hub.state()
        if not current.hub_image or not hub.exists:
            raise StackError("the hub has not been set up yet: run `hubd up` first")
        return current

    def plan(self, pull: bool = True) -> UpgradePlan:
        """Fetch and build what an upgrade would switch to; change nothing that runs."""
        current = self.current_pins()
        config = self.stack.config
        reporter = self.stack.reporter
        if pull:
            pull_image(self.client, config.hub_base_image, reporter)
        hub_image, _ = ensure_hub_image(
            self.client,
            self.stack.names,
            config.hub_base_image,
            reporter,
            base_id=image_id(self.client, config.hub_base_image),
        )
        refs = self.stack.images.user_image_refs()
        _, problems = ensure_user_images(self.client, refs, reporter, pull=pull)
        if problems:
            # An upgrade switches to every configured image at once: a missing one stops it.
            raise ImageError(problems[0])
        target = self.stack.images.pins_for(
            hub_image, {ref: image_id(self.client, ref) for ref in refs}
        )
        return UpgradePlan(current, target, tuple(self._changes(current, target)))

    def _changes(self, current: ImagePins, target: ImagePins) -> list[Change]:
        changes: list[Change] = []
        if current.hub_image != target.hub_image:
            changes += self._package_changes(
                current.hub_image, target.hub_image, HUB_PACKAGES, "hub image"
            )
        for ref, new_id in target.user_images.items():
            old_id = current.user_images.get(ref, "")
            if old_id != new_id:
                changes += self._package_changes(old_id, new_id, USER_PACKAGES, f"user image {ref}")
        for ref in current.user_images.keys() - target.user_images.keys():
            changes.append(Change(f"user image {ref}", "in use", "no longer configured"))
        return changes

    def _package_changes(
        self, old_image: str, new_image: str, packages: tuple[str, ...], label: str
    ) -> list[Change]:
        old = self._package_versions(old_image, packages)
        new = self._package_versions(new_image, packages)
        changed = [
            Change(f"{label}: {name}", old.get(name, ""), new.get(name, ""))
            for name in packages
            if old.get(name) != new.get(name)
        ]
        # Same versions in a different image (a rebuilt base, security fixes): say so.
        return changed or [
            Change(label, _short_id(self.client, old_image), _short_id(self.client, new_image))
        ]

    def _package_versions(self, image: str, packages: tuple[str, ...]) -> dict[str, str]:
        if not image or not image_present(self.client, image):
            return {}
        key = (image, packages)
        if key not in self._versions:
            self._versions[key] = package_versions(self.client, image, packages)
        return self._versions[key]

    # ------------------------------------------------------------------ apply

    def apply(self, plan: UpgradePlan, deadline_s: float) -> UpgradeResult:
        """Switch to `plan.target` behind the health gate; roll back if it does not pass."""
        stack, names = self.stack, self.stack.names
        current = self.current_pins()
        if current != plan.current:
            raise StackError("the stack changed since the upgrade was planned: run it again")
        if plan.up_to_date:
            return UpgradeResult()
        if not stack.hub.state().running:
            raise StackError(
                "the hub is not running: start it (`hubd up`) so that the new version can be "
                "checked against it, then upgrade"
            )
        for image in [plan.target.hub_image, *plan.target.user_images.values()]:
            if not image_present(self.client, image):
                raise StackError(f"the image {image} of the plan is gone: run the upgrade again")
        running = sorted({s.user for s in stack.user_servers() if s.running})
        stack.reporter.step("copying the hub database")
        copy = back_up_for_upgrade(self.client, names, current.hub_image)
        stack.reporter.step(f"starting the new hub ({plan.target.hub_image})")
        try:
            stack.hub.ensure(plan.target.hub_image, dict(plan.target.user_images), upgrade_db=True)
            self.gate(running, deadline_s)
        except (HubdError, requests.RequestException) as exc:
            reason = _one_line(str(exc))
            saved = self._keep_log("upgrade-failed")
            self._roll_back(current, saved)
            self._prune_hub_images(keep={current.hub_image})
            raise UpgradeRolledBack(
                f"the upgrade was rolled back and the previous version runs again: {reason}"
                f" (the new hub's log: {saved})"
            ) from None
        self.pins.save(plan.target)
        # The previous hub image stays (its base and packages, for going back by hand).
        self._prune_hub_images(keep={plan.target.hub_image, current.hub_image})
        return UpgradeResult(changes=[str(c) for c in plan.changes], database_copy=copy)

    def _roll_back(self, previous: ImagePins, saved_log: Path) -> None:
        stack = self.stack
        stack.reporter.step("rolling back: the previous hub and the database copy")
        try:
            stack.hub.remove()
            restore_upgrade_copy(self.client, stack.names, previous.hub_image)
            stack.hub.ensure(previous.hub_image, dict(previous.user_images))
            stack.hub.wait_healthy()
        except HubdError as exc:
            raise UpgradeFailed(
                f"the upgrade failed and so did putting the previous version back: "
                f"{_one_line(str(exc))}; the database copy is kept on the hub's data volume "
                f"(see {saved_log} and `hubd logs`)"
            ) from None

    def _prune_hub_images(self, keep: set[str]) -> None:
        """Remove this stack's other hub images (each holds a JupyterHub base of its own,
        hundreds of MB); one still used by a container stays, as Docker refuses without force."""
        for image in self.client.images.list(filters=self.stack.names.filters(ROLE_HUB_IMAGE)):
            if keep & set(image.tags):
                continue
            try:
                self.client.images.remove(image.id)
            except DockerException as exc:
                log.info("kept hub image %s: %s", image.short_id, exc)

    def _keep_log(self, prefix: str) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = self.log_dir / f"{prefix}-{stamp}.log"
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(self.stack.hub.log_tail(2000))
        except OSError as exc:
            log.warning("could not keep the new hub's log in %s: %s", path, exc)
        log.warning("the new hub's log is kept in %s", path)
        return path

    # ------------------------------------------------------------------ the gate

    def gate(self, running_servers: list[str], deadline_s: float) -> None:
        """Raise with the reason unless the new hub serves people as the old one did."""
        deadline = time.monotonic() + deadline_s
        self.stack.hub.wait_healthy(deadline_s)
        base = self.stack.local_url.rstrip("/")
        # Over HTTPS: a session that checks hubd's certificate (hubd/tls/client.py).
        page = self.stack.proxy.new_session().get(f"{base}/hub/login", timeout=30)
        if (
            page.status_code != 200
            or "<form" not in page.text
            or 'name="password"' not in page.text
        ):
            raise StackError(f"the login page does not render (HTTP {page.status_code})")
        self._login_round_trip(base)
        self._routes_intact(running_servers, deadline)

    def _login_round_trip(self, base: str) -> None:
        api = self.stack.hub_api()
        probe, password = PROBE_USER_PREFIX + secrets.token_hex(3), secrets.token_urlsafe(18)
        api.create_account(probe, password, admin=False)
        try:
            session = self.stack.proxy.new_session()
            session.get(f"{base}/hub/login", timeout=30)
            response = session.post(
                f"{base}/hub/login",
                data={
                    "username": probe,
                    "password": password,
                    "_xsrf": session.cookies.get("_xsrf", ""),
                },
                allow_redirects=False,
                timeout=30,
            )
            if response.status_code != 302:
                raise StackError(f"logging in failed (HTTP {response.status_code})")
            me = session.get(
                f"{base}/hub/api/user",
                headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
                timeout=30,
            )
            if me.status_code != 200 or me.json().get("name") != probe:
                raise StackError(f"the hub API does not know a fresh login (HTTP {me.status_code})")
        finally:
            api.delete_user(probe)

    def _routes_intact(self, users: list[str], deadline: float) -> None:
        """Every server that ran before the switch is routed again (the hub re-adds routes at
        start; give it until the deadline)."""
        api = self.stack.hub_api()
        while True:
            routes = api.proxy_routes()
            missing = [u for u in users if f"/user/{u}/" not in routes]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise StackError(f"the proxy lost the route to the server of {', '.join(missing)}")
            time.sleep(self.stack.timing.hub_ready_poll_s)


def _short_id(client: Any, image: str) -> str:
    if not image:
        return ""
    try:
        return str(client.images.get(image).id)[7:19]
    except DockerException:  # a display nicety only
        return image


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown reason"


__all__ = ["Change", "UpgradePlan", "UpgradeResult", "UpgradeRolledBack", "Upgrader"]
