"""mDNS inside `hubd run`: the daemon advertises while the hub is meant to run, shows the
name in use on its control API, and says goodbye when asked to stop.

The daemon runs in the `adv` test host with no Docker engine within reach (a real engine's
hub would publish its port outside the namespace): the hub is then `docker-unavailable`,
but it is still *meant* to run, which is what decides advertising.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.control import ControlClient
from hubd.errors import HubdError
from hubd.status import MdnsView
from tests.integration import netns
from tests.integration.test_mdns import LAN_V4, REPO, lan

pytestmark = pytest.mark.integration
__all__ = ["lan"]


@pytest.fixture
def daemon_in_adv(lan: netns.Lab, tmp_path: Path) -> Iterator[tuple[ControlClient, netns.Process]]:
    adv = lan.hosts["adv"]
    config = tmp_path / "hubd.toml"
    config.write_text('mdns_name = "jup-daemon"\nport = 8765\nstack_name = "hubdmdns"\n')
    env = {
        "PYTHONPATH": str(REPO),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "STATE_DIRECTORY": str(tmp_path / "state"),
        "RUNTIME_DIRECTORY": str(tmp_path / "run"),
        "LOGS_DIRECTORY": str(tmp_path / "log"),
        "HUBD_TIMING": "mdns_conflict_check_interval_s=2,mdns_address_poll_s=1",
    }
    process = adv.spawn(
        [sys.executable, "-m", "hubd", "--config", str(config), "run"], "hubd-run", env=env
    )
    client = ControlClient(tmp_path / "run" / "control.sock", timeout=10)
    try:
        yield client, process
    finally:
        process.stop(timeout=15)


def _mdns(client: ControlClient) -> MdnsView:
    try:
        return client.status().mdns or MdnsView()
    except HubdError:
        return MdnsView()


def test_daemon_advertises_reports_and_says_goodbye(
    lan: netns.Lab, daemon_in_adv: tuple[ControlClient, netns.Process]
) -> None:
    client, process = daemon_in_adv
    peer = lan.hosts["peer"]
    netns.wait_until(lambda: _mdns(client).state == "advertising", 20)
    status = client.status()
    assert status.state == "docker-unavailable"
    assert status.mdns is not None and status.mdns.hostname == "jup-daemon.local"
    assert status.url == "http://jup-daemon.local:8765/"
    netns.wait_until(lambda: peer.resolve("jup-daemon.local") == [LAN_V4], 15)

    client.stop()  # the owner stops the hub: the name goes with it
    netns.wait_until(lambda: client.status().mdns is None, 10)
    netns.wait_until(lambda: not peer.resolve("jup-daemon.local"), 12, interval=0.1)

    client.start()
    netns.wait_until(lambda: peer.resolve("jup-daemon.local") == [LAN_V4], 15)
    assert process.stop(timeout=15) == 0
    netns.wait_until(lambda: not peer.resolve("jup-daemon.local"), 12, interval=0.1)
