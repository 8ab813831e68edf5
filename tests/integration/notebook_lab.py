"""A person's JupyterLab in a real browser, with a notebook open: shared by the proxy-front
tests (tests/integration/test_proxy_front.py) and bench/bench_faults.py.

The notebook has one cell that prints how often it ran; `run_cell()` runs it (Ctrl+Enter, as
a person does) and waits for the new output.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.browser import chromium, log_in
from tests.integration.hubclient import _xsrf_headers

NOTEBOOK = "front.ipynb"
CELL_SOURCE = "n = globals().get('n', 0) + 1\nprint(f'round {n}')"
# Before any page script: every WebSocket the page opens is kept in a list, so that a test can
# drop the kernel's as a proxy's death does, without one (a baseline for the reconnect), and
# see each try's fate: one closed before it ever opened is a failed try, after which
# JupyterLab waits a random 10-30 s before the next.
TRACK_SOCKETS = """
(() => {
  const Original = window.WebSocket;
  const sockets = (window.__hubd_sockets = []);
  window.WebSocket = new Proxy(Original, {
    construct(target, args) {
      const socket = new target(...args);
      socket.addEventListener('open', () => { socket.__hubd_opened = true; });
      socket.addEventListener('close', () => {
        if (!socket.__hubd_opened) socket.__hubd_failed = true;
      });
      sockets.push(socket);
      return socket;
    },
  });
})();
"""
DROP_KERNEL_SOCKETS = """
const open = window.__hubd_sockets.filter(
  (s) => s.url.includes('/channels') && s.readyState === WebSocket.OPEN);
open.forEach((s) => s.close());
window.__hubd_dropped = open;
return open.length;
"""


def notebook() -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "front-cell",
        "metadata": {},
        "outputs": [],
        "source": CELL_SOURCE,
    }
    return {
        "cells": [cell],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Lab:
    """Chromium logged in as `name`, the notebook open and its cell run once (the kernel is
    up). `session` (logged in as the same person) writes the notebook first."""

    def __init__(self, base_url: str, name: str, password: str, session: requests.Session) -> None:
        response = session.put(
            f"{base_url}/user/{name}/api/contents/{NOTEBOOK}",
            json={"type": "notebook", "format": "json", "content": notebook()},
            headers=_xsrf_headers(session, name),
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text
        # In a network namespace of its own: the Docker networks other tests make beside it
        # would otherwise fail its connecting requests (ERR_NETWORK_CHANGED, docs/https.md).
        port = urlsplit(base_url).port
        assert port is not None, base_url
        self.driver: webdriver.Chrome = chromium(isolate_ports=[port])
        self.runs = 0
        try:
            self.driver.execute_cdp_cmd(
                "Page.addScriptToEvaluateOnNewDocument", {"source": TRACK_SOCKETS}
            )
            log_in(self.driver, base_url, name, password)
            self.driver.get(f"{base_url}/user/{name}/lab/tree/{NOTEBOOK}")
            WebDriverWait(self.driver, 180).until(
                lambda d: d.find_elements(
                    By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .jp-InputArea-editor .cm-content"
                )
            )
            self._first_run(deadline_s=180)
            self.driver.execute_script("window.__hubd_same_page = 'yes';")
        except BaseException:
            self.driver.quit()
            raise

    def _first_run(self, deadline_s: float) -> None:
        """Run the cell until it shows an output: a run before the kernel is there is lost."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                self.run_cell(timeout_s=10)
                return
            except (TimeoutException, WebDriverException):
                match = re.search(r"round (\d+)", self.output())
                if match:  # an earlier press ran after all
                    self.runs = int(match.group(1))
                    return
                if time.monotonic() > deadline:
                    raise
                self.runs -= 1

    def run_cell(self, timeout_s: float) -> float:
        """Run the cell (Ctrl+Enter) and wait for its new output; the seconds it took."""
        self.runs += 1
        wanted = f"round {self.runs}"
        # Into the cell's editor (edit mode): Ctrl+Enter runs the cell and stays on it.
        editor = self.driver.find_element(By.CSS_SELECTOR, ".jp-Cell .jp-InputArea-editor")
        ActionChains(self.driver).move_to_element(editor).click().perform()
        began = time.monotonic()
        ActionChains(self.driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(
            Keys.CONTROL
        ).perform()
        WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(
            lambda d: wanted in self.output()
        )
        return time.monotonic() - began

    def run_cell_after_reconnect(self, timeout_s: float) -> float:
        """Close the kernel's websocket from the page (JupyterLab reconnects at once, as after
        a proxy's death), then run the cell: what a reconnect costs without any fault."""
        dropped = self.driver.execute_script(DROP_KERNEL_SOCKETS)
        assert dropped, "no open kernel websocket to drop"
        # Only once the close event has run is JupyterLab "connecting" and queues the cell;
        # before, it would send it on the closing socket.
        WebDriverWait(self.driver, timeout_s, poll_frequency=0.02).until(
            lambda d: d.execute_script(
                "return window.__hubd_dropped.every((s) => s.readyState === WebSocket.CLOSED);"
            )
        )
        return self.run_cell(timeout_s)

    def sockets_made(self) -> int:
        """How many WebSockets the page has made so far: a mark for `kernel_tries_since`."""
        return int(self.driver.execute_script("return window.__hubd_sockets.length;"))

    def kernel_tries_since(self, mark: int) -> tuple[int, int]:
        """The kernel websocket tries made since `mark`, and how many of them failed."""
        tries = self.driver.execute_script(
            "return window.__hubd_sockets.slice(arguments[0])"
            ".filter((s) => s.url.includes('/channels'))"
            ".map((s) => s.__hubd_failed === true);",
            mark,
        )
        return len(tries), sum(1 for failed in tries if failed)

    def output(self) -> str:
        elements = self.driver.find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-OutputArea-output")
        return " ".join(str(e.text) for e in elements)

    def dialogs(self) -> list[str]:
        return [str(e.text) for e in self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")]

    def same_page(self) -> bool:
        return bool(self.driver.execute_script("return window.__hubd_same_page === 'yes';"))

    def close(self) -> None:
        self.driver.quit()
