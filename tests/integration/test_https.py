"""Issue 25: HTTPS on the LAN from hubd's own CA, seen by real clients (Chromium, openssl,
Python's ssl), on one stack shared by the module."""

from __future__ import annotations

import contextlib
import datetime
import functools
import http.client
import ipaddress
import os
import plistlib
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from selenium import webdriver
from selenium.common.exceptions import (
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hubd.timing import Timing
from hubd.tls import ca, leaf, store, trustpage
from tests.images.build import TestImages
from tests.integration.browser import chromium, log_in, page_text
from tests.integration.daemon_proc import FAST_TIMING, DaemonProc, wait_for
from tests.integration.docker_env import StackEnv, free_port, own_stack
from tests.patience import patient

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.browser]

PASSWORD = "meadow-copper-violin"
HUB_NAME = "jupyter.local"
# Only catches hangs: a cold JupyterLab on a loaded 2-core machine is slow (tests/patience.py).
WAIT_S = patient(60)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    test_images: TestImages,
) -> Iterator[StackEnv]:
    folder = tmp_path_factory.mktemp("https")
    (folder / "usb").mkdir()
    with own_stack(
        folder,
        docker_client,
        test_images,
        tls="auto",
        https_port=free_port(),
        backup_image=test_images.restic,
        backup_target=str(folder / "usb"),
    ) as env:
        env.hubd("up")
        env.hubd("user", "add", "--password-stdin", "--", "ada", input=PASSWORD + "\n")
        yield env


def root_file(env: StackEnv) -> Path:
    return store.files_in(env.state_dir).root_cert


def https_base(env: StackEnv) -> str:
    return f"https://{HUB_NAME}:{env.config.https_port}"


def http_base(env: StackEnv) -> str:
    return f"http://127.0.0.1:{env.config.port}"


@pytest.fixture(scope="module")
def trusting_home(hub: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME whose NSS database (where Chromium on Linux reads trusted roots, whatever its
    profile) holds hubd's root, put there by `hubd trust install --browsers-only`."""
    home = tmp_path_factory.mktemp("home")
    done = subprocess.run(
        [sys.executable, "-m", "hubd", "--config", str(hub.config_file), "trust", "install",
         "--browsers-only"],
        env={**hub.env, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    assert "trusted      Chromium/Chrome" in done.stdout, done.stdout
    return home


def test_trust_status_and_uninstall(hub: StackEnv, tmp_path: Path) -> None:
    env = {**hub.env, "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "hubd", "--config", str(hub.config_file), "trust"]
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True, check=True)
    assert "not trusted" in run([*command, "status", "--browsers-only"]).stdout
    run([*command, "install", "--browsers-only"])
    listed = run(["certutil", "-L", "-d", f"sql:{tmp_path / '.pki' / 'nssdb'}"]).stdout
    assert "hubd " in listed and "C,," in listed
    run([*command, "uninstall", "--browsers-only"])
    assert "not trusted" in run([*command, "status", "--browsers-only"]).stdout


def _browser(
    home: Path | None,
    ports: tuple[int, ...],
    *,
    isolated: bool = True,
    hosts: dict[str, str] | None = None,
) -> webdriver.Chrome:
    """Chromium in a network namespace of its own with `ports` of 127.0.0.1 piped in: beside
    the other tests' Docker networks and containers it would otherwise fail requests with
    ERR_NETWORK_CHANGED (docs/https.md; test_a_browser_request_outlives_the_machines_networks)."""
    return chromium(
        host_rules={HUB_NAME: "127.0.0.1", **(hosts or {})},
        home=home,
        isolate_ports=ports if isolated else None,
    )


def _hub_ports(env: StackEnv) -> tuple[int, ...]:
    return (env.config.port, env.config.https_port)


# ---------------------------------------------------------------------- the CA on disk, status


def test_the_root_key_is_private_and_status_shows_the_fingerprint(hub: StackEnv) -> None:
    files = store.files_in(hub.state_dir)
    assert stat.S_IMODE(files.root_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.leaf_key.stat().st_mode) == 0o600
    root = x509.load_pem_x509_certificate(files.root_cert.read_bytes())
    import json

    status = json.loads(hub.hubd("status", "--json").stdout)
    assert status["fingerprint"] == ca.fingerprint(root)
    assert status["url"] == f"{https_base(hub)}/"
    assert ca.fingerprint(root) in hub.hubd("status").stdout
    # The certificate reaches the proxy as files, never through its environment.
    proxy = hub.client.containers.get(hub.names.proxy_container)
    key_text = files.leaf_key.read_text()
    assert key_text.splitlines()[1] not in str(proxy.attrs)


# ---------------------------------------------------------------------- the HTTP page


def test_the_http_page_shows_how_to_trust_and_serves_the_root(hub: StackEnv) -> None:
    root_pem = root_file(hub).read_bytes()
    root = x509.load_pem_x509_certificate(root_pem)
    for path in ("/", "/hub/login", "/user/ada/lab?x=1"):  # never a dead end
        page = requests.get(http_base(hub) + path, timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert ca.fingerprint(root) in page.text and "Certificate Trust Settings" in page.text
    crt = requests.get(f"{http_base(hub)}/{trustpage.ROOT_CRT}", timeout=30)
    assert crt.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert x509.load_pem_x509_certificate(crt.content) == root
    profile = requests.get(f"{http_base(hub)}/{trustpage.MOBILECONFIG}", timeout=30)
    assert profile.headers["Content-Type"] == "application/x-apple-aspen-config"
    plist = plistlib.loads(profile.content)
    assert plist["PayloadType"] == "Configuration"
    payload = plist["PayloadContent"][0]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == ca.der(root)
    uuids = {uuid.UUID(plist["PayloadUUID"]), uuid.UUID(payload["PayloadUUID"])}
    assert len(uuids) == 2


def test_without_the_root_a_browser_gets_the_steps_not_a_warning(hub: StackEnv) -> None:
    driver = _browser(None, _hub_ports(hub))
    try:
        driver.get(f"http://{HUB_NAME}:{hub.config.port}/hub/login")
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-trusted") == "no"
        )
        body = driver.find_element(By.TAG_NAME, "body")
        assert body.get_attribute("data-detected") == "linux"  # headless Chromium on Linux
        assert driver.current_url.startswith("http://")
        text = page_text(driver)
        assert "Manage certificates" in text and "Certificate Trust Settings" not in text
    finally:
        driver.quit()


# ---------------------------------------------------------------------- a device that trusts it


def _run_cell(driver: webdriver.Chrome, index: int, expect: str) -> None:
    """Select the notebook's cell `index` and press the toolbar's Run button, as a person
    does; wait until `expect` shows in an output. (Run again while the cell has not started:
    a click on a notebook that is still rendering is lost.)"""
    run = '[data-command="notebook:run-cell-and-select-next"]'

    def shown(d: webdriver.Chrome) -> bool:
        for dialog in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
            dialog.click()  # e.g. a kernel choice: take the default
        if any(expect in o.text for o in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")):
            return True
        cells = d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")
        try:
            prompt = cells[index].find_element(By.CSS_SELECTOR, ".jp-InputPrompt")
            if prompt.text.strip() in ("[ ]:", ""):
                prompt.click()
                d.find_element(By.CSS_SELECTOR, run).click()
        except (
            IndexError,
            NoSuchElementException,
            ElementNotInteractableException,
            StaleElementReferenceException,
        ):
            pass
        return False

    WebDriverWait(driver, WAIT_S, poll_frequency=2).until(shown)


_NOTEBOOK = (
    '{"cells": [{"cell_type": "code", "execution_count": null, "id": "a1", "metadata": {},'
    ' "outputs": [], "source": "kept = 6 * 7; print(\'answer\', kept)"},'
    ' {"cell_type": "code", "execution_count": null, "id": "a2", "metadata": {},'
    ' "outputs": [], "source": "print(\'still\', kept)"}],'
    ' "metadata": {"kernelspec": {"display_name": "Python 3",'
    ' "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}'
)


def test_a_person_who_trusts_the_root_works_over_https_through_a_new_leaf(
    hub: StackEnv, trusting_home: Path
) -> None:
    driver = _browser(trusting_home, _hub_ports(hub))
    try:
        # The plain address sends a trusting device straight on to HTTPS, same path.
        driver.get(f"http://{HUB_NAME}:{hub.config.port}/hub/login")
        WebDriverWait(driver, WAIT_S).until(
            lambda d: (
                d.current_url.startswith(f"{https_base(hub)}/hub/login")
                and d.execute_script("return location.protocol") == "https:"
                and d.find_elements(By.ID, "username_input")
            )
        )
        assert driver.execute_script("return window.isSecureContext") is True
        assert driver.execute_script("return !!navigator.clipboard") is True
        log_in(driver, https_base(hub), "ada", PASSWORD)
        driver.get(f"{https_base(hub)}/hub/spawn")
        WebDriverWait(driver, WAIT_S).until(lambda d: "/user/ada/lab" in d.current_url)
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard")
        )
        made = driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
            fetch("/user/ada/api/contents/https.ipynb", {method: "PUT",
              headers: {"X-XSRFToken": decodeURIComponent(xsrf),
                        "Content-Type": "application/json"},
              body: JSON.stringify({type: "notebook", format: "json",
                                    content: JSON.parse(arguments[0])})})
              // Its kernel started first, as reopening a notebook finds it: JupyterLab then
              // asks nothing.
              .then(r => r.ok ? fetch("/user/ada/api/sessions", {method: "POST",
                  headers: {"X-XSRFToken": decodeURIComponent(xsrf),
                            "Content-Type": "application/json"},
                  body: JSON.stringify({path: "https.ipynb", name: "https.ipynb",
                                        type: "notebook", kernel: {name: "python3"}})})
                  .then(s => done(s.ok ? r.status : "session " + s.status)) : done(r.status),
                    e => done(String(e)));""",
            _NOTEBOOK,
        )
        assert made in (200, 201), made
        driver.get(f"{https_base(hub)}/user/ada/lab/tree/https.ipynb")
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
        )
        _run_cell(driver, 0, "answer 42")

        # The hub is renamed by mDNS and gets a new address: a new leaf, handed to the
        # running proxy without a restart. The person's kernel and websocket carry on.
        proxy = hub.client.containers.get(hub.names.proxy_container)
        started = proxy.attrs["State"]["StartedAt"]
        stack = hub.stack()
        before = _served_names(hub)
        # A name mDNS moves to after a conflict that the served leaf lacks (the test can run
        # again on the same hub).
        renamed = next(
            f"jupyter-{n}.local" for n in range(2, 10) if f"jupyter-{n}.local" not in before.dns
        )
        stack.mdns_hostnames = (renamed,)
        assert stack.refresh_tls()
        after = _served_names(hub)
        assert renamed in after.dns and after != before
        proxy.reload()
        assert proxy.attrs["State"]["StartedAt"] == started
        _run_cell(driver, 1, "still 42")
        driver.refresh()
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
        )
        assert driver.execute_script("return window.isSecureContext") is True
    except Exception:
        driver.save_screenshot(str(trusting_home / "failed.png"))  # for whoever looks
        raise
    finally:
        driver.quit()


def _served_names(env: StackEnv) -> leaf.LeafNames:
    """The names in the certificate the proxy serves to a new connection right now."""
    context = ssl.create_default_context(cafile=str(root_file(env)))
    raw = socket.create_connection(("127.0.0.1", env.config.https_port), timeout=30)
    with context.wrap_socket(raw, server_hostname=HUB_NAME) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return leaf.names_of(x509.load_der_x509_certificate(der))


def test_an_open_connection_survives_a_new_leaf(hub: StackEnv) -> None:
    context = ssl.create_default_context(cafile=str(root_file(hub)))
    conn = http.client.HTTPSConnection(HUB_NAME, hub.config.https_port, context=context)
    conn.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", hub.config.https_port), timeout=30),
        server_hostname=HUB_NAME,
    )
    conn.request("GET", "/hub/health")
    first = conn.getresponse()
    first.read()
    stack = hub.stack()
    stack.mdns_hostnames = ("jupyter-3.local",)
    assert stack.refresh_tls()
    conn.request("GET", "/hub/health")  # the same TLS connection
    second = conn.getresponse()
    second.read()
    assert (first.status, second.status) == (200, 200)
    assert "jupyter-3.local" in _served_names(hub).dns
    conn.close()


def _served_serial(env: StackEnv) -> int:
    context = ssl.create_default_context(cafile=str(root_file(env)))
    raw = socket.create_connection(("127.0.0.1", env.config.https_port), timeout=30)
    with context.wrap_socket(raw, server_hostname=HUB_NAME) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_the_daemons_loop_renews_the_leaf_under_an_open_connection(
    hub: StackEnv, tmp_path: Path
) -> None:
    """`hubd run` looks at the leaf every `tls_check_interval_s` (hubd/_daemon/tls_refresh.py).
    Renewal made due at every look (renewed earlier than a leaf lives): each look hands the
    running proxy a new leaf, the proxy is not restarted, and a connection opened before,
    kept in use, carries on through every renewal."""
    timing = f"{FAST_TIMING},reconcile_interval_s=1,tls_check_interval_s=1"
    daemon = DaemonProc(hub, tmp_path / "daemon.log", f"{timing},tls_leaf_renew_before_days=400")
    daemon.start()
    try:
        daemon.wait_state("running")
        proxy = hub.client.containers.get(hub.names.proxy_container)
        started = proxy.attrs["State"]["StartedAt"]
        context = ssl.create_default_context(cafile=str(root_file(hub)))
        conn = http.client.HTTPSConnection(HUB_NAME, hub.config.https_port, context=context)
        conn.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", hub.config.https_port), timeout=30),
            server_hostname=HUB_NAME,
        )
        answers: list[int] = []
        serials = [_served_serial(hub)]

        def renewed_twice() -> bool:
            conn.request("GET", "/hub/health")  # the same TLS connection each time
            answer = conn.getresponse()
            answer.read()
            answers.append(answer.status)
            serial = _served_serial(hub)
            if serial != serials[-1]:
                serials.append(serial)
            return len(serials) >= 3

        try:
            wait_for(renewed_twice, 120, "two new leaves from the daemon's loop")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the daemon's log:\n{daemon.log_tail()}") from None
        conn.close()
        assert set(answers) == {200}
        proxy.reload()
        assert proxy.attrs["State"]["StartedAt"] == started
    finally:
        assert daemon.stop() == 0, daemon.log_tail()


# ---------------------------------------------------------------------- name constraints


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<title>served</title>served"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _tls_server(tmp: Path, cert: x509.Certificate, key: object) -> tuple[ThreadingHTTPServer, int]:
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def test_chromium_refuses_a_leaf_for_example_com_from_hubds_root(
    hub: StackEnv, trusting_home: Path, tmp_path: Path
) -> None:
    files = store.files_in(hub.state_dir)
    root_cert = x509.load_pem_x509_certificate(files.root_cert.read_bytes())
    root_key = serialization.load_pem_private_key(files.root_key.read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    results = {}
    for host in ("example.com", HUB_NAME):
        names = leaf.LeafNames.of([host], [ipaddress.ip_address("10.0.0.1")])
        cert, key = leaf.issue(root_cert, root_key, names, now, Timing().tls_leaf_valid_days)  # type: ignore[arg-type]
        folder = tmp_path / host
        folder.mkdir()
        server, port = _tls_server(folder, cert, key)
        driver = _browser(trusting_home, (port,), hosts={"example.com": "127.0.0.1"})
        try:
            driver.get(f"https://{host}:{port}/")
            results[host] = (driver.title, driver.page_source)
        finally:
            driver.quit()
            server.shutdown()
    assert results[HUB_NAME][0] == "served"  # the control: the same root, this hub's name
    title, source = results["example.com"]
    assert title != "served" and "ERR_CERT" in source, title


# ---------------------------------------------------------------------- a busy Docker engine


# How long a held handshake waits after the machine's network changed: a browser that reacts
# to the change has failed the request well within.
SETTLE_S = 5


class _HeldTLSServer:
    """One HTTPS answer per connection (`Connection: close`, so every request needs a new
    connection). While `release` is clear, a new connection's TLS handshake is left waiting,
    as a loaded machine leaves it for a while: the request stays in Chromium's connect phase."""

    PAGE = b'<html><head><title>served</title><link rel="icon" href="data:,"></head>served</html>'

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.release = threading.Event()
        self.release.set()
        self.held = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            if not self.release.is_set():
                self.held.set()
                self.release.wait(WAIT_S)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                    + f"Content-Length: {len(self.PAGE)}\r\n\r\n".encode()
                    + self.PAGE
                )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.release.set()


@pytest.mark.parametrize("isolated", [True, False], ids=["own-namespace", "machine-network"])
def test_a_browser_request_outlives_the_machines_networks(
    hub: StackEnv, trusting_home: Path, tmp_path: Path, isolated: bool
) -> None:
    """Issue 25's "Failed to fetch" under the full suite: Chromium fails every request still
    connecting when this machine's addresses change, as they do whenever a test beside it makes
    a Docker network or container. An HTTPS request connects for a while (the TLS handshake,
    through the front, on a loaded machine): here the server holds it there, deterministically,
    while a Docker network comes and goes. The browser the tests use, in a namespace of its own,
    gets its answer; one on the machine's network (the control) gets "Failed to fetch"."""
    files = store.files_in(hub.state_dir)
    root_cert = x509.load_pem_x509_certificate(files.root_cert.read_bytes())
    root_key = serialization.load_pem_private_key(files.root_key.read_bytes(), None)
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = leaf.issue(root_cert, root_key, leaf.LeafNames.of([HUB_NAME], []), now, 30)
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    page, target = _HeldTLSServer(context), _HeldTLSServer(context)
    driver = _browser(trusting_home, (page.port, target.port), isolated=isolated)
    network = None
    try:
        driver.get(f"https://{HUB_NAME}:{page.port}/")
        assert driver.title == "served"
        # Another port: a connection of its own, never opened before (no spare one to reuse).
        target.release.clear()
        driver.execute_script(
            """window.__hubd = "waiting";
            fetch(arguments[0], {mode: "no-cors"}).then(r => { window.__hubd = r.type; },
                                                        e => { window.__hubd = String(e); });""",
            f"https://{HUB_NAME}:{target.port}/again",
        )
        assert target.held.wait(WAIT_S)  # the fetch is in its TLS handshake
        network = hub.client.networks.create(f"hubdt{os.getpid()}-netchange", driver="bridge")
        # Chromium reads the change from netlink at once and fails the fetch within
        # milliseconds; the handshake is held a few seconds longer, then let through.
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            if driver.execute_script("return window.__hubd") != "waiting":
                break
            time.sleep(0.2)
        target.release.set()
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.execute_script("return window.__hubd") != "waiting"
        )
        result = driver.execute_script("return window.__hubd")
        if isolated:
            assert result == "opaque", result  # answered (no-cors: its body is not shown)
        else:
            assert result == "TypeError: Failed to fetch", result
    finally:
        driver.quit()
        page.close()
        target.close()
        if network is not None:
            network.remove()


# ---------------------------------------------------------------------- backup and restore


def test_a_restored_hub_keeps_the_root_devices_trust(hub: StackEnv, tmp_path: Path) -> None:
    files = store.files_in(hub.state_dir)
    trusted = tmp_path / "trusted-root.pem"
    trusted.write_bytes(files.root_cert.read_bytes())
    hub.hubd("backup")
    # The state folder lost (a new machine): hubd makes a root nobody trusts yet.
    shutil.rmtree(files.folder)
    hub.hubd("up")
    assert files.root_cert.read_bytes() != trusted.read_bytes()
    hub.hubd("restore", "--yes")
    assert files.root_cert.read_bytes() == trusted.read_bytes()
    assert stat.S_IMODE(files.root_key.stat().st_mode) == 0o600
    # A device that trusted the hub before trusts the restored one.
    context = ssl.create_default_context(cafile=str(trusted))
    raw = socket.create_connection(("127.0.0.1", hub.config.https_port), timeout=30)
    with context.wrap_socket(raw, server_hostname=HUB_NAME) as tls:
        assert tls.version()
