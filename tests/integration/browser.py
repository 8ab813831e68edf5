"""A real browser for tests that check what a person sees: Debian's Chromium driven by
selenium through the system chromedriver, headless and offline.

`chromium()` starts one; the `browser` fixture gives each test its own and always quits it.
Names such as `jupyter.local` can be mapped to a test address with `host_rules`
(Chromium's `--host-resolver-rules`), so no resolver outside the test is asked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

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


def chromium(
    *,
    host_rules: Mapping[str, str] | None = None,
    user_data_dir: Path | None = None,
    extra_args: list[str] | None = None,
    home: Path | None = None,
) -> webdriver.Chrome:
    """A headless Chromium. `host_rules` maps host names to addresses ("jupyter.local" ->
    "127.0.0.1"); `user_data_dir` is the profile, a fresh one when None. Chromium on Linux
    reads trusted roots from `$HOME/.pki/nssdb` whatever the profile: `home` sets HOME for the
    driver and the browser (import a root there with certutil, tests/integration/test_https.py)."""
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
    env = {**os.environ, "HOME": str(home)} if home is not None else None
    service = Service(executable_path=CHROMEDRIVER, env=env)
    driver = webdriver.Chrome(service=service, options=options)
    if user_data_dir is None:
        # Removed with the browser: the profile is this driver's alone.
        original_quit = driver.quit

        def quit_and_clean() -> None:
            try:
                original_quit()
            finally:
                shutil.rmtree(profile, ignore_errors=True)

        driver.quit = quit_and_clean  # type: ignore[method-assign]
    return driver


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
