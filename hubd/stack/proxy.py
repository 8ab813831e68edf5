"""configurable-http-proxy in a container of its own, in front of the hub and people's servers.

The front (stack/front.py) publishes the hub's port and pipes every connection to the proxy,
waiting for it while it restarts, so that a proxy restart refuses nobody. People's requests to
their own servers (`/user/NAME/...`) go from the proxy straight to those servers, so the hub
can crash, hang, be upgraded or recreated while people keep working: only `/hub/...` pages
wait for it.

The proxy keeps its routing table in memory and, through hubd's storage class, in a file of
its container (stack/proxy_routes.py): restarted, it routes everyone again at once. A new
proxy container starts with the old one's table; hubd then has the hub re-add every route
(`POST /hub/api/proxy`) to catch up. Until then its default target is the hub.
A change of the proxy's spec (its image, hubd's options) is a planned switch: the new proxy
is made ready beside the old one, then takes its name (stack/proxy_switch.py).

The proxy's API token is a secret shared by the hub and the proxy only. It never goes into an
environment variable (`docker inspect` shows those) nor a command line: hubd writes it as a
file into both containers, and a tiny entrypoint exports it to CHP, which reads it from its
environment only. It lives as long as one of the two containers does.

The proxy joins every person's network to reach their servers, but its API listens only on its
address on the stack network (named by an alias of its own that exists there alone), which
Docker keeps people's networks from reaching: the token is not the API's only guard. The hub
reaches the API through the front, which holds the alias the hub knows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import docker
import requests
from cryptography import x509
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import HubUnhealthy, StackError
from hubd.stack import proxy_tls
from hubd.stack.containers import (
    ContainerState,
    TarEntry,
    http_ok,
    read_file,
    refuse_foreign,
    revive,
    start_container,
    stop_gracefully,
    tar_of,
)
from hubd.stack.https import Served, https_url
from hubd.stack.naming import LABEL_SPEC, ROLE_PROXY, ROLE_PROXY_ROUTES, StackNames
from hubd.stack.part import ContainerPart
from hubd.stack.progress import Reporter
from hubd.stack.proxy_routes import (
    ANSWERS_JS,
    ROUTES_DIR,
    ROUTES_FILE,
    ROUTES_STORE_IN_PROXY,
    ROUTES_STORE_JS,
    routes_entries,
    valid_table,
)
from hubd.stack.settings import HUB_PORT, PROXY_API_PORT, PROXY_TOKEN_FILE
from hubd.stack.user_networks import join_user_networks
from hubd.timing import Timing
from hubd.tls import trustpage
from hubd.tls.client import session_for

log = logging.getLogger(__name__)

PROXY_PUBLIC_PORT = 8000
# Inside the proxy container; not under a tmpfs, so hubd can put it there before the start.
PROXY_TOKEN_IN_PROXY = "/etc/hubd-proxy/token"
# The official image runs CHP as nobody.
PROXY_USER_ID = 65534
# The entrypoint: the token from its file into CHP's environment, then CHP itself (the
# arguments after "sh" are CHP's). No secret in it, so `docker inspect` may show it.
PROXY_ENTRYPOINT = [
    "/bin/sh",
    "-c",
    'CONFIGPROXY_AUTH_TOKEN="$(cat ' + PROXY_TOKEN_IN_PROXY + ')" && export CONFIGPROXY_AUTH_TOKEN'
    ' && exec configurable-http-proxy "$@"',
    "sh",
]
HEALTH_PATH = "_chp_healthz"
# The alias this proxy container's API listens on (each container has its own, see _create).
LABEL_API_ALIAS = "io.hubd.proxy-api"
# Stands for that alias in the hashed spec: a new container is not a new configuration.
_OWN_API_ALIAS = "{own api alias}"


def served_certificate(
    host: str, port: int, name: str, timeout_s: float
) -> x509.Certificate | None:
    """The certificate a new TLS connection to `host:port` gets for `name` (unchecked: only
    to compare), None when none answers."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return x509.load_der_x509_certificate(der) if der else None


def proxy_public_url(config: Config, served: Served | None = None) -> str:
    """Where hubd itself reaches the hub: over HTTPS when the proxy serves it."""
    host = config.bind_address
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    if served is not None:
        return https_url(host, served.https_port)
    return f"http://{host}:{config.port}/"


class Proxy(ContainerPart):
    """The proxy container of one stack."""

    # Its role label; the standby (proxy_standby.py) has its own.
    role = ROLE_PROXY
    # A new spec is switched to without a gap (proxy_switch.py); the standby is recreated.
    switches = True

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        names: StackNames,
        reporter: Reporter,
        timing: Timing,
    ) -> None:
        super().__init__(client, config, names, reporter, timing)
        # What the proxy serves over HTTPS (Stack.prepare_tls), None for plain HTTP.
        self.served: Served | None = None
        self.session = requests.Session()
        self.health_url = proxy_public_url(config) + HEALTH_PATH

    def serve(self, served: Served | None) -> None:
        """Serve `served` from now on: new containers get it at once, a running one when
        sync_tls() hands it over."""
        self.served = served
        self.health_url = proxy_public_url(self.config, served) + HEALTH_PATH
        self.session = self.new_session()

    def new_session(self) -> requests.Session:
        """A session for requests to the hub from this machine (over HTTPS: checking the
        certificate against hubd's root for the hub's name)."""
        if self.served is None:
            return requests.Session()
        return session_for(self.served.root_file, self.served.hostname)

    # ------------------------------------------------------------------ the container

    def spec(self, api_alias: str = _OWN_API_ALIAS) -> tuple[dict[str, Any], str]:
        """The proxy container's create arguments and a hash that changes when they do."""
        hub = f"http://{self.names.hub_container}:{HUB_PORT}"
        served = self.served
        chp_port = proxy_tls.HTTPS_PORT_IN_PROXY if served else PROXY_PUBLIC_PORT
        command = [
            "--ip=0.0.0.0",
            f"--port={chp_port}",
            # The API only on the proxy's stack-network address: the proxy also joins every
            # person's network (to reach their servers), and people must not reach its API.
            # CHP resolves the alias through Docker's DNS when it starts listening.
            f"--api-ip={api_alias}",
            f"--api-port={PROXY_API_PORT}",
            # Until the hub has re-added the routes after a proxy restart, send everything to
            # the hub, which redirects people to their servers or its own pages.
            f"--default-target={hub}",
            f"--error-target={hub}/hub/error",
            # The routing table survives a restart of this container (proxy_routes.py).
            f"--storage-backend={ROUTES_STORE_IN_PROXY}",
        ]
        entrypoint = PROXY_ENTRYPOINT
        if served is not None:
            # HTTPS from CHP; plain HTTP (`port`) serves the trust page (hubd/stack/proxy_tls.py).
            # Both reach it through the front, which publishes them (front.py).
            command += proxy_tls.chp_arguments()
            entrypoint = proxy_tls.entrypoint(PROXY_TOKEN_IN_PROXY)
        hashed: dict[str, object] = {
            "image": self.config.proxy_image,
            # The image's id too: a tag that moved (a pulled upgrade) is a new proxy.
            "image_id": self._image_id(),
            "command": [arg.replace(api_alias, _OWN_API_ALIAS) for arg in command],
            "entrypoint": entrypoint,
            "store": ROUTES_STORE_JS,
            "behind_front": True,
            "routes_volume": ROUTES_DIR,
        }
        spec_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
        create: dict[str, Any] = {
            "image": self.config.proxy_image,
            "name": self.container_name,
            "entrypoint": entrypoint,
            "command": command,
            "labels": self.names.labels(
                self.role, **{LABEL_SPEC: spec_hash, LABEL_API_ALIAS: api_alias}
            ),
            # The routing table, shared with the other proxy (proxy_routes.py).
            "volumes": {self.names.proxy_routes_volume: {"bind": ROUTES_DIR, "mode": "rw"}},
            "network": self.names.network,
            # Set at creation: an alias given here exists on this network only.
            "networking_config": {self.names.network: {"Aliases": [api_alias]}},
            # No published port: the front holds it (front.py).
            # Nothing of a previous run may survive into the next: CHP keeps its state in
            # memory, and whatever it writes goes to a fresh tmpfs.
            "tmpfs": {"/tmp": "rw,nosuid,nodev"},
            # hubd alone restarts the proxy: a Docker restart policy would race with it.
            "restart_policy": {"Name": "no"},
            "init": True,
            "detach": True,
        }
        return create, spec_hash

    def _image_id(self) -> str:
        try:
            return str(self.client.images.get(self.config.proxy_image).id)
        except docker.errors.ImageNotFound:
            return ""

    @property
    def container_name(self) -> str:
        return self.names.proxy_container

    def token(self, hub: Container | None) -> str:
        """The token the proxy and the hub share: the one they hold, or a new one."""
        proxy = self.find()
        for container, path in ((proxy, PROXY_TOKEN_IN_PROXY), (hub, PROXY_TOKEN_FILE)):
            if container is not None:
                text = (read_file(container, path) or "").strip()
                if text:
                    return text
        return secrets.token_hex(32)

    def ensure(self, token: str, switch: bool = False) -> str:
        """Make the proxy container match the spec and run. Returns what was done.

        With `switch` (the front runs), a proxy whose spec changed is replaced without a gap
        (proxy_switch.py); otherwise it is removed and a new one created."""
        from hubd.stack.proxy_switch import ProxySwitch

        if self.switches:
            ProxySwitch(self).tidy()
        _, spec_hash = self.spec()
        container = self.find()
        action = "unchanged"
        if container is not None and container.labels.get(LABEL_SPEC) != spec_hash:
            if switch and self.switches and container.status == "running":
                self.reporter.step(f"the proxy's configuration changed: replacing {container.name}")
                ProxySwitch(self).switch(container, token)
                return "replaced"
            self.reporter.step(f"the proxy's configuration changed: recreating {container.name}")
            container.remove(force=True)
            container, action = None, "recreated"
        if container is None:
            container = self._create(token)
            action = "created" if action == "unchanged" else action
        if container.status == "paused":
            container.unpause()
            action = "unpaused"
        elif container.status != "running":
            try:
                self._start(container)
                action = "started" if action == "unchanged" else action
            except StackError as exc:
                # Broken by hand (its network removed, its image untagged): a new container
                # from the spec, as for the hub. The routes live in memory only; nothing is lost.
                self.reporter.step(f"{exc}: replacing {container.name}")
                table = self.routing_table(container)
                container.remove(force=True)
                container = self._create(token, routes=table)
                self._start(container)
                action = "recreated"
        return action

    def _create(self, token: str, routes: str | None = None, name: str | None = None) -> Container:
        """A new proxy container (named `name`, by default the proxy's), with the token and
        the routing table `routes` (JSON, as the store writes it) in it."""
        # Each container's API listens on an alias of its own: two proxies side by side
        # (a planned switch) must not share the name their API binds to.
        alias = f"{self.names.stack}-proxy-api-{secrets.token_hex(4)}"
        create, _ = self.spec(alias)
        create["name"] = name or self.container_name
        self._ensure_routes_volume()
        self.reporter.step(f"creating the proxy container {create['name']}")
        container = self.client.containers.create(**create)
        # The proxy reaches each person's server on that person's own network.
        join_user_networks(self.client, self.names, container)
        files = [
            TarEntry(PROXY_TOKEN_IN_PROXY, token, mode=0o400, owner=PROXY_USER_ID),
            TarEntry(ROUTES_STORE_IN_PROXY, ROUTES_STORE_JS, mode=0o444),
            *routes_entries(routes, PROXY_USER_ID),
        ]
        if self.served is not None:
            files += _tls_entries(self.served)
        container.put_archive("/", tar_of(files))
        return container

    def _ensure_routes_volume(self) -> None:
        try:
            volume = self.client.volumes.get(self.names.proxy_routes_volume)
        except docker.errors.NotFound:
            self.client.volumes.create(
                self.names.proxy_routes_volume, labels=self.names.labels(ROLE_PROXY_ROUTES)
            )
            return
        refuse_foreign("volume", volume, self.names.stack)

    # ------------------------------------------------------------------ HTTPS

    def sync_tls(self) -> bool:
        """Hand a renewed or re-issued certificate (and the page) to the running proxy without
        a restart: open connections carry on. True when something changed."""
        served, container = self.served, self.find()
        if served is None or container is None:
            return False
        have_cert = read_file(container, proxy_tls.CERT_IN_PROXY)
        have_page = read_file(container, f"{proxy_tls.PAGE_DIR_IN_PROXY}/index.html")
        if have_cert == served.cert_pem and have_page == served.page.get("index.html", have_page):
            return False
        container.put_archive("/", tar_of(_tls_entries(served)))
        container.reload()
        if container.status == "running" and have_cert != served.cert_pem:
            container.kill(signal="SIGHUP")
            self._wait_serving(served)
            self.reporter.step("the proxy serves the new certificate")
        return True

    def _wait_serving(self, served: Served) -> None:
        """Until a new connection gets the new certificate: the proxy reloads it when the
        signal arrives, a moment after the kill returns."""
        wanted = x509.load_pem_x509_certificate(served.cert_pem.encode())
        host = urlsplit(self.health_url).hostname or "127.0.0.1"
        deadline = time.monotonic() + self.timing.proxy_ready_deadline_s
        while time.monotonic() < deadline:
            timeout_s = self.timing.health_timeout_s
            if served_certificate(host, served.https_port, served.hostname, timeout_s) == wanted:
                return
            time.sleep(self.timing.proxy_ready_poll_s)
        log.warning("the proxy did not take the new certificate; it will at its next restart")

    def routing_table(self, container: Container | None = None) -> str | None:
        """The routing table a proxy container holds (running or not), if any."""
        container = container or self.find()
        if container is None:
            return None
        try:
            return valid_table(read_file(container, ROUTES_FILE))
        except docker.errors.APIError:
            return None

    def answers_directly(self, container: Container | None = None) -> bool:
        """Whether the proxy's own API answers HTTP, asked from inside its container (past
        the front): tells a hung proxy from a hung front."""
        container = container or self.find()
        if container is None or container.status != "running":
            return False
        alias = container.labels.get(LABEL_API_ALIAS) or self.names.proxy_api_alias
        timeout_ms = str(int(self.timing.proxy_direct_probe_timeout_s * 1000))
        try:
            result = container.exec_run(
                ["node", "-e", ANSWERS_JS, timeout_ms, alias, str(PROXY_API_PORT)],
                user=str(PROXY_USER_ID),
            )
        except docker.errors.APIError:
            return False  # paused, or gone meanwhile
        return bool(result.exit_code == 0)

    def _start(self, container: Container) -> None:
        self.reporter.step(f"starting {container.name}")
        start_container(container, "proxy", self.config.port)

    def start_or_restart(self, restart: bool) -> None:
        """Bring a dead, hung or paused proxy back."""
        revive(self.find(), "proxy", restart, self._start)

    def stop(self) -> bool:
        return stop_gracefully(self.find(), self.timing.container_stop_timeout_s)

    # ------------------------------------------------------------------ health

    def is_healthy(self, timeout: float | None = None) -> bool:
        return http_ok(self.health_url, timeout or self.timing.health_timeout_s, self.session)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timing.proxy_ready_deadline_s
        while time.monotonic() < deadline:
            if self.is_healthy():
                return
            container = self.find()
            if container is not None and container.status not in ("running", "created"):
                logs = bytes(container.logs(tail=15)).decode(errors="replace")
                raise HubUnhealthy(
                    f"the proxy exited while starting ({container.status}); its last lines:\n"
                    + logs
                )
            time.sleep(self.timing.proxy_ready_poll_s)
        raise HubUnhealthy(
            f"the proxy did not answer {self.health_url} within "
            f"{self.timing.proxy_ready_deadline_s:.0f} s; see `docker logs "
            f"{self.names.proxy_container}`"
        )


__all__ = ["ContainerState", "Proxy", "proxy_public_url"]


def _tls_entries(served: Served) -> list[TarEntry]:
    """The certificate (the key readable by CHP's user alone), the wrapper and the page: files
    in the proxy container, never environment variables."""
    public = {
        proxy_tls.CERT_IN_PROXY: served.cert_pem,
        proxy_tls.WRAPPER_IN_PROXY: proxy_tls.wrapper_js(
            trustpage.ROOT_CRT, trustpage.MOBILECONFIG
        ),
        **{f"{proxy_tls.PAGE_DIR_IN_PROXY}/{n}": text for n, text in served.page.items()},
    }
    return [
        TarEntry(proxy_tls.KEY_IN_PROXY, served.key_pem, mode=0o400, owner=PROXY_USER_ID),
        *(TarEntry(path, text, mode=0o444) for path, text in public.items()),
    ]
