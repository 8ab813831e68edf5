"""People's accounts on the hub: checked here, kept by the hub's authenticator.

Passwords go from hubd to the hub's own account API over HTTP on this machine and are stored
there as bcrypt hashes in the hub database (on the hub's data volume). hubd never writes them
anywhere, passes them in no environment variable and on no command line.
"""

from __future__ import annotations

from typing import Any

from hubd.errors import UserAccountError
from hubd.stack import Stack
from hubd.stack.swarm.homes import homes_elsewhere, set_home
from hubd.stack.user_networks import remove_user_network

# The checks lived here; they are re-exported for their callers.
from hubd.stack.usernames import MAX_USERNAME_LENGTH as MAX_USERNAME_LENGTH
from hubd.stack.usernames import check_password as check_password
from hubd.stack.usernames import check_username as check_username
from hubd.stack.usernames import username_problem as username_problem
from hubd.status import NodeView


class Accounts:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def list_users(self) -> list[dict[str, Any]]:
        running = {s.user for s in self.stack.user_servers() if s.running}
        people = []
        for user in self.stack.hub_api().list_users():
            if user.get("kind", "user") != "user":
                continue
            people.append(
                {
                    "name": user["name"],
                    "admin": bool(user.get("admin")),
                    "server_running": user["name"] in running
                    or bool((user.get("servers") or {}).get("", {}).get("ready")),
                    "last_activity": user.get("last_activity"),
                }
            )
        return sorted(people, key=lambda u: str(u["name"]))

    def add_user(
        self, name: str, password: str, admin: bool = False, node: str | None = None
    ) -> dict[str, Any]:
        """A new account; with `node` (a Swarm node), their files and server live there."""
        check_username(name)
        check_password(password)
        api = self.stack.hub_api()
        if api.get_user(name) is not None:
            raise UserAccountError(f"user {name!r} already exists")
        # The node is checked before the account exists, so a refusal leaves nothing behind.
        home: NodeView | None
        if node:
            home = self.stack.nodes.check_home_for_new_account(node, name)
        else:
            home = self.stack.nodes.home_with_room(
                name, lambda: [str(u.get("name")) for u in api.list_users()]
            )
        api.create_account(name, password, admin)
        result: dict[str, Any] = {"name": name, "admin": admin}
        if home is not None:
            set_home(self.stack.client, self.stack.names, name, home.id)
            result["node"] = home.hostname
        return result

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        check_username(name)
        check_password(password)
        api = self.stack.hub_api()
        if api.get_user(name) is None:
            raise UserAccountError(f"there is no user {name!r}")
        api.set_password(name, password)
        return {"name": name}

    def unlock_user(self, name: str) -> dict[str, Any]:
        check_username(name)
        api = self.stack.hub_api()
        if api.get_user(name) is None:
            raise UserAccountError(f"there is no user {name!r}")
        return {"name": name, "was_locked": api.unlock_account(name)}

    def remove_user(self, name: str, delete_data: bool = False) -> dict[str, Any]:
        check_username(name)
        api = self.stack.hub_api()
        if api.get_user(name) is None:
            raise UserAccountError(f"there is no user {name!r}")
        if delete_data:
            self._refuse_files_elsewhere(name)
        # The hub stops the user's server before it deletes the user.
        api.delete_user(name)
        remove_user_network(self.stack.client, self.stack.names, name)
        volume = self.stack.user_volumes().get(name)
        deleted = False
        if delete_data and volume:
            self.stack.client.volumes.get(volume).remove(force=True)
            deleted = True
        return {"name": name, "volume": volume, "data_deleted": deleted}

    def _refuse_files_elsewhere(self, name: str) -> None:
        """On a Swarm, someone's files may be on another machine, whose engine hubd cannot
        reach to delete them: refused before anything is deleted, with what to do."""
        where = homes_elsewhere(self.stack.client, self.stack.names).get(name)
        if where is None:
            return
        here = self.stack.client.info().get("Name") or "this machine"
        raise UserAccountError(
            f"{name}'s files are on {where}, where hubd cannot delete them: move them here "
            f"first (hubd user move {name} --to {here}), or remove {name} without --delete-data"
        )

    def has_admin(self) -> bool:
        return any(user["admin"] for user in self.list_users())


FIRST_ADMIN_HINT = "no admin yet: add one with `hubd user add NAME --admin`"


def first_admin_hint(stack: Stack) -> str | None:
    """What to tell the owner after a start when nobody can manage the hub yet, else None."""
    return None if Accounts(stack).has_admin() else FIRST_ADMIN_HINT
