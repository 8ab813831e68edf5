"""The Advertiser's API contract, without a network: states, errors, close() twice."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from hubd.errors import ConfigError
from hubd.logsafe import WarnOnce
from hubd.mdns import Advertiser, AdvertiserStatus
from hubd.timing import Timing

FAST = Timing(mdns_address_poll_s=0.2, mdns_retry_s=0.2)


def test_status_before_start_and_close_twice() -> None:
    advertiser = Advertiser("Jupyter", 8000, timing=Timing())
    status = advertiser.status()
    assert status == AdvertiserStatus("stopped", "jupyter", None, (), None, None, 8000)
    advertiser.close()
    advertiser.close()
    advertiser.start()  # after close: nothing happens
    assert advertiser.status().state == "stopped"


@pytest.mark.parametrize("name", ["", "-x", "x-", "ju_pyter", "jupyter.lan", "a" * 64, "jü"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        Advertiser(name, 8000, timing=Timing())


def test_name_may_carry_dot_local() -> None:
    assert Advertiser("jupyter.local", 8000, timing=Timing()).status().requested_name == "jupyter"


def test_bad_port_is_refused() -> None:
    with pytest.raises(ConfigError):
        Advertiser("jupyter", 0, timing=Timing())


def test_missing_interface_is_an_error_state_and_close_stops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[AdvertiserStatus] = []

    def on_change(status: AdvertiserStatus) -> None:
        seen.append(status)
        raise RuntimeError("a broken callback must not stop the advertiser")

    caplog.set_level(logging.DEBUG, logger="hubd.mdns")
    advertiser = Advertiser(
        "jupyter", 8000, interfaces=["no-such-if0"], timing=FAST, on_change=on_change
    )
    advertiser.start()
    try:
        deadline = time.monotonic() + 5
        while advertiser.status().state != "error" and time.monotonic() < deadline:
            time.sleep(0.02)
        status = advertiser.status()
        assert status.state == "error"
        assert status.last_error is not None and "no-such-if0" in status.last_error
        assert status.hostname is None and status.url is None
        time.sleep(0.6)  # a few more rescans: still one warning
    finally:
        advertiser.close()
        advertiser.close()
    assert advertiser.status().state == "stopped"
    assert [s.state for s in seen][:2] == ["probing", "error"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("no network interface named 'no-such-if0'" in r.message for r in warnings) == 1
    assert sum("status callback failed" in r.message for r in warnings) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("hubd-mdns")]


def test_status_helpers() -> None:
    status = AdvertiserStatus(
        "conflict-renamed",
        "jupyter",
        "jupyter-2.local",
        ("192.0.2.1",),
        "JupyterHub on box",
        None,
        8000,
    )
    assert status.url == "http://jupyter-2.local:8000/"
    assert status.as_dict()["addresses"] == ["192.0.2.1"]


def test_warnings_once_then_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hubd.mdns")
    warn = WarnOnce(logging.getLogger("hubd.mdns")).warn
    warn("a", "first A")
    warn("a", "first A again")
    warn("b", "first B")
    levels = [(r.levelno, r.message) for r in caplog.records]
    assert levels == [
        (logging.WARNING, "first A"),
        (logging.DEBUG, "first A again"),
        (logging.WARNING, "first B"),
    ]
