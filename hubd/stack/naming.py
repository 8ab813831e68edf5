"""Names and labels of the Docker objects that make up one hubd stack.

Everything hubd creates carries `io.hubd.stack=<stack name>`; hubd only ever lists, changes or
removes objects with that label, so nothing else on the engine is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL_STACK = "io.hubd.stack"
LABEL_ROLE = "io.hubd.role"
LABEL_SPEC = "io.hubd.spec"
LABEL_USER = "io.hubd.user"

ROLE_HUB = "hub"
ROLE_PROXY = "proxy"
ROLE_PROXY_STANDBY = "proxy-standby"
ROLE_PROXY_ROUTES = "proxy-routes"
ROLE_FRONT = "front"
ROLE_USER_SERVER = "user-server"
ROLE_HUB_DATA = "hub-data"
ROLE_USER_DATA = "user-data"
ROLE_NETWORK = "network"
ROLE_USER_NETWORK = "user-network"
ROLE_HUB_IMAGE = "hub-image"


@dataclass(frozen=True)
class StackNames:
    stack: str

    @property
    def network(self) -> str:
        return f"{self.stack}-net"

    @property
    def user_network_prefix(self) -> str:
        # One network per person's server, shared only with the hub (see user_networks.py).
        return f"{self.stack}-unet-"

    @property
    def user_swarm_network_prefix(self) -> str:
        # On a Swarm: one attachable overlay per person, under its own prefix so that a bridge
        # network of a server still running from before the Swarm is never mistaken for one.
        return f"{self.stack}-snet-"

    @property
    def user_network_members(self) -> list[str]:
        """The stack's containers that join every person's network: whatever must reach
        people's servers (the proxy, the hub's spawn checks) or be reached by them (the hub's
        API). Nothing else: the gate lets the hub connect only these."""
        return [self.hub_container, self.proxy_container, self.proxy_standby_container]

    @property
    def hub_container(self) -> str:
        return f"{self.stack}-hub"

    @property
    def proxy_container(self) -> str:
        return f"{self.stack}-proxy"

    @property
    def proxy_standby_container(self) -> str:
        """A second proxy, running beside the proxy with the same routing table: the front
        sends connections to it while the proxy is away (stack/proxy_standby.py)."""
        return f"{self.stack}-proxy-standby"

    @property
    def proxy_routes_volume(self) -> str:
        """The proxies' routing table, shared by the proxy and its standby (proxy_routes.py)."""
        return f"{self.stack}-proxy-routes"

    @property
    def front_container(self) -> str:
        """The front: holds the published port, forwards to whichever container is named
        `proxy_container` (stack/front.py)."""
        return f"{self.stack}-front"

    @property
    def proxy_next_container(self) -> str:
        """A new proxy being made ready beside the running one (a planned switch)."""
        return f"{self.stack}-proxy-next"

    @property
    def proxy_old_container(self) -> str:
        """The proxy a planned switch has just replaced, draining until it is removed."""
        return f"{self.stack}-proxy-old"

    @property
    def proxy_api_alias(self) -> str:
        """The proxy API's name on the stack network only (a Docker alias is per network).
        The front holds it and forwards to the proxy's API, which listens only on the
        proxy's own stack-network address: people's networks cannot reach either."""
        return f"{self.stack}-proxy-api"

    @property
    def hub_data_volume(self) -> str:
        return f"{self.stack}-hub-data"

    @property
    def hub_image_repo(self) -> str:
        return f"{self.stack}-hub"

    @property
    def user_container_prefix(self) -> str:
        return f"{self.stack}-user"

    @property
    def user_volume_template(self) -> str:
        # DockerSpawner fills in {username} (escaped to be safe in Docker names).
        return f"{self.stack}-home-{{username}}"

    def user_volume(self, escaped_username: str) -> str:
        return self.user_volume_template.format(username=escaped_username)

    def labels(self, role: str, **extra: str) -> dict[str, str]:
        return {LABEL_STACK: self.stack, LABEL_ROLE: role, **extra}

    def filters(self, role: str | None = None) -> dict[str, list[str]]:
        wanted = [f"{LABEL_STACK}={self.stack}"]
        if role is not None:
            wanted.append(f"{LABEL_ROLE}={role}")
        return {"label": wanted}
