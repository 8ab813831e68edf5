"""The hub's login page, as a person sees it in a real browser (Chromium).

After too many wrong passwords the right one must not get "Invalid username or password."
(people then think their password is wrong): the page says the account is locked, for how
long, and who can lift it, and says the same for a name without an account, so it tells a
stranger nothing about which accounts exist. The name typed stays in its box, and the fields
carry the autocomplete hints password managers use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hubd.stack.settings import ALLOWED_FAILED_LOGINS
from tests.integration.browser import browser
from tests.integration.docker_env import StackEnv

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.browser]
__all__ = ["browser"]  # the fixture, used by name

PASSWORD = "tulip-orbit-candle"
WRONG = "not-the-password"
INVALID = "Invalid username or password."


def try_login(driver: webdriver.Chrome, base_url: str, username: str, password: str) -> str:
    """Sign in through the form as a person does; the error the page then shows ("" if none)."""
    driver.get(f"{base_url}/hub/login")
    name = driver.find_element(By.ID, "username_input")
    name.clear()
    name.send_keys(username)
    driver.find_element(By.ID, "password_input").send_keys(password)
    driver.find_element(By.ID, "login_submit").click()
    WebDriverWait(driver, 30).until(
        lambda d: "/hub/login" not in d.current_url or d.find_elements(By.ID, "login_error")
    )
    errors = driver.find_elements(By.ID, "login_error")
    return errors[0].text.strip() if errors else ""


def test_login_page_tells_locked_from_wrong_keeps_name_and_hints(
    stack_env: StackEnv, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    hub = stack_env
    hub.hubd("up")
    hub.hubd("user", "add", "--password-stdin", "--", "rosa", input=PASSWORD + "\n")
    base = hub.base_url

    # The page's fields carry the autocomplete hints.
    browser.get(f"{base}/hub/login")
    assert browser.find_element(By.ID, "username_input").get_attribute("autocomplete") == (
        "username"
    )
    assert browser.find_element(By.ID, "password_input").get_attribute("autocomplete") == (
        "current-password"
    )

    # A wrong password says so, and the name stays in its box.
    assert try_login(browser, base, "rosa", WRONG) == INVALID
    assert browser.find_element(By.ID, "username_input").get_attribute("value") == "rosa"
    browser.save_screenshot(str(tmp_path / "login-wrong-password.png"))

    for _ in range(ALLOWED_FAILED_LOGINS - 1):
        try_login(browser, base, "rosa", WRONG)
    # The right password now: locked, said as it is, not "invalid".
    locked = try_login(browser, base, "rosa", PASSWORD)
    assert "/hub/login" in browser.current_url
    assert locked != INVALID
    assert "locked" in locked and "minutes" in locked
    assert "hubd user unlock rosa" in locked
    assert browser.find_element(By.ID, "username_input").get_attribute("value") == "rosa"
    browser.save_screenshot(str(tmp_path / "login-locked.png"))
    assert (tmp_path / "login-locked.png").read_bytes() != (
        tmp_path / "login-wrong-password.png"
    ).read_bytes()

    # A name without an account gets the same answers: nothing tells it does not exist.
    locked_nobody = locked.replace("rosa", "nobody")
    answers = [try_login(browser, base, "nobody", WRONG) for _ in range(ALLOWED_FAILED_LOGINS)]
    assert answers == [INVALID] * (ALLOWED_FAILED_LOGINS - 1) + [locked_nobody]
    assert try_login(browser, base, "nobody", PASSWORD) == locked_nobody

    # The owner lifts the lockout; the right password works at once.
    hub.hubd("user", "unlock", "rosa")
    assert try_login(browser, base, "rosa", PASSWORD) == ""
    assert "/hub/login" not in browser.current_url
