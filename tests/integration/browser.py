"""A real browser for tests that check what a person sees: Debian's Chromium driven by
selenium through the system chromedriver, headless and offline.

`chromium()` starts one; the `browser` fixture gives each test its own and always quits it.
Names such as `jupyter.local` can be mapped to a test address with `host_rules`
(Chromium's `--host-resolver-rules`), so no resolver outside the test is asked.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.browser_netns import Isolation

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium's own background traffic (updates, sync, safe browsing) would go to hosts this
# machine cannot and must not reach.
QUIET_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--window-size=1280,900",
]
# HUBDTEST_NETLOG=<folder>: every browser writes Chromium's net-log there (every event, with
# its net error code), for finding out why a request failed (docs/https.md).
NETLOG_ENV = "HUBDTEST_NETLOG"
_netlog_numbers = itertools.count()


def chromium(
    *,
    host_rules: Mapping[str, str] | None = None,
    user_data_dir: Path | None = None,
    extra_args: list[str] | None = None,
    home: Path | None = None,
    isolate_ports: Iterable[int] | None = None,
) -> webdriver.Chrome:
    """A headless Chromium. `host_rules` maps host names to addresses ("jupyter.local" ->
    "127.0.0.1"); `user_data_dir` is the profile, a fresh one when None. Chromium on Linux
    reads trusted roots from `$HOME/.pki/nssdb` whatever the profile: `home` sets HOME for the
    driver and the browser (import a root there with certutil, tests/integration/test_https.py).

    `isolate_ports`: run the browser in a network namespace of its own, where this machine's
    network changes (Docker making networks and containers for other tests) cannot reach it,
    with these ports of 127.0.0.1 piped in (tests/integration/browser_netns.py). Chromium fails
    every request that is still connecting when the machine's addresses change."""
    os.environ["SE_OFFLINE"] = "true"  # selenium must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in QUIET_FLAGS:
        options.add_argument(flag)
    if host_rules:
        rules = ",".join(f"MAP {name} {address}" for name, address in host_rules.items())
        options.add_argument(f"--host-resolver-rules={rules}")
    profile = user_data_dir or Path(tempfile.mkdtemp(prefix="hubd-chromium-"))
    options.add_argument(f"--user-data-dir={profile}")
    for flag in extra_args or []:
        options.add_argument(flag)
    netlog_folder = os.environ.get(NETLOG_ENV)
    if netlog_folder:
        Path(netlog_folder).mkdir(parents=True, exist_ok=True)
        name = f"netlog-{os.getpid()}-{next(_netlog_numbers)}.json"
        options.add_argument(f"--log-net-log={Path(netlog_folder) / name}")
        options.add_argument("--net-log-capture-mode=Everything")
    cleanups: list[Callable[[], None]] = []
    if user_data_dir is None:
        # Removed with the browser: the profile is this driver's alone.
        cleanups.append(lambda: shutil.rmtree(profile, ignore_errors=True))
    if isolate_ports is not None:
        isolation = Isolation(isolate_ports)
        cleanups.append(isolation.close)
        options.binary_location = isolation.wrapper(CHROMIUM)
        # Its DevTools port would be inside the namespace, out of chromedriver's reach.
        options.add_argument("--remote-debugging-pipe")
    env = {**os.environ, "HOME": str(home)} if home is not None else None
    service = Service(executable_path=CHROMEDRIVER, env=env)
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except BaseException:
        _run_all(cleanups)
        raise
    if cleanups:
        original_quit = driver.quit

        def quit_and_clean() -> None:
            try:
                original_quit()
            finally:
                _run_all(cleanups)

        driver.quit = quit_and_clean  # type: ignore[method-assign]
    return driver


def _run_all(cleanups: list[Callable[[], None]]) -> None:
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: webdriver.Chrome, base_url: str, username: str, password: str) -> None:
    """Fill in and send the hub's login form as a person does."""
    driver.get(f"{base_url}/hub/login")
    driver.find_element(By.ID, "username_input").send_keys(username)
    driver.find_element(By.ID, "password_input").send_keys(password)
    driver.find_element(By.ID, "login_submit").click()
    WebDriverWait(driver, 30).until(lambda d: "/hub/login" not in d.current_url)


def page_text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)
