"""The daemon's mDNS glue: when it advertises, a new advertiser for new settings, failures
as warnings, the status it shows. The advertiser is a stand-in here (a real one sends
multicast on the machine's LAN); the real one in the daemon: tests/integration/
test_daemon_mdns.py."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from hubd._daemon.advertising import AdvertiserLike, Advertising, https_port_of, make_advertiser
from hubd.config import Config
from hubd.logsafe import WarnOnce
from hubd.mdns import AdvertiserStatus
from hubd.status import MdnsView
from hubd.timing import Timing

log = logging.getLogger("hubd")


class FakeAdvertiser:
    def __init__(self, config: Config, https_port: int | None, fail: Exception | None) -> None:
        self.config, self.https_port, self.fail = config, https_port, fail
        self.started = self.closed = 0
        self.state = AdvertiserStatus("stopped", config.mdns_name, None, (), None, None, 8000)

    def start(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.started += 1
        self.state = dataclasses.replace(
            self.state,
            state="conflict-renamed",
            hostname=f"{self.config.mdns_name}-2.local",
            addresses=("192.0.2.7",),
            service_name="JupyterHub on box",
        )

    def close(self) -> None:
        self.closed += 1

    def status(self) -> AdvertiserStatus:
        return self.state


class Maker:
    """Makes the stand-ins, and keeps them to look at; `fail` makes the next starts fail."""

    def __init__(self) -> None:
        self.made: list[FakeAdvertiser] = []
        self.fail: Exception | None = None

    def __call__(self, config: Config, timing: Timing, https_port: int | None) -> AdvertiserLike:
        self.made.append(FakeAdvertiser(config, https_port, self.fail))
        return self.made[-1]


def advertising(config: Config | None = None) -> tuple[Advertising, Maker]:
    maker = Maker()
    return Advertising(config or Config(), Timing(), WarnOnce(log), make=maker), maker


def test_advertises_while_the_hub_is_meant_to_run_and_says_goodbye_when_not() -> None:
    mdns, maker = advertising()
    mdns.sync_once(hub_wanted=False, https_port=None)
    assert maker.made == [] and mdns.status() is None
    mdns.sync_once(hub_wanted=True, https_port=8443)
    mdns.sync_once(hub_wanted=True, https_port=8443)  # one advertiser, started once
    assert [(a.started, a.closed, a.https_port) for a in maker.made] == [(1, 0, 8443)]
    mdns.sync_once(hub_wanted=False, https_port=8443)
    assert [(a.started, a.closed) for a in maker.made] == [(1, 1)]
    assert mdns.advertiser is None and mdns.status() is None and mdns.hostname() is None


def test_with_mdns_off_nothing_is_advertised() -> None:
    mdns, maker = advertising(Config(mdns_enabled=False))
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert maker.made == [] and mdns.status() is None


def test_the_status_shows_what_the_advertiser_claimed() -> None:
    mdns, _ = advertising(Config(mdns_name="lab"))
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert mdns.hostname() == "lab-2.local"
    assert mdns.status() == MdnsView(
        state="conflict-renamed",
        hostname="lab-2.local",
        addresses=("192.0.2.7",),
        service="JupyterHub on box",
        error=None,
    )


def test_a_failed_start_is_one_warning_and_tried_again_next_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubd")
    mdns, maker = advertising()
    maker.fail = OSError("no multicast here")
    mdns.sync_once(hub_wanted=True, https_port=None)
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert mdns.advertiser is None and [a.closed for a in maker.made] == [1, 1]
    failed = [r for r in caplog.records if "mDNS advertising failed" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING, logging.DEBUG]
    assert "no multicast here" in failed[0].getMessage()
    maker.fail = None
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert mdns.advertiser is maker.made[-1] and maker.made[-1].started == 1


def test_a_changed_mdns_setting_means_a_new_advertiser_and_another_setting_does_not() -> None:
    mdns, maker = advertising(Config(mdns_name="lab"))
    mdns.sync_once(hub_wanted=True, https_port=None)
    mdns.reload(Config(mdns_name="lab", auto_upgrade="check"))
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert [(a.config.mdns_name, a.closed) for a in maker.made] == [("lab", 0)]
    mdns.reload(Config(mdns_name="physics"))
    assert maker.made[0].closed == 1 and mdns.advertiser is None
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert [(a.config.mdns_name, a.closed) for a in maker.made] == [("lab", 1), ("physics", 0)]
    mdns.reload(Config(mdns_name="physics", mdns_enabled=False))
    mdns.sync_once(hub_wanted=True, https_port=None)
    assert len(maker.made) == 2 and maker.made[1].closed == 1


def test_close_says_goodbye_once_and_is_safe_twice() -> None:
    mdns, maker = advertising()
    mdns.close()  # nothing advertised yet
    mdns.sync_once(hub_wanted=True, https_port=None)
    mdns.close()
    mdns.close()
    assert [a.closed for a in maker.made] == [1]


def test_the_real_advertiser_is_built_from_the_config_and_not_started() -> None:
    config = Config(mdns_name="jup-unit", port=8123)
    advertiser = make_advertiser(config, Timing(), 9443)
    try:
        status = advertiser.status()
        assert (status.state, status.requested_name, status.port) == ("stopped", "jup-unit", 8123)
    finally:
        advertiser.close()


def test_no_stack_no_https_port() -> None:
    assert https_port_of(None) is None


def test_the_daemon_wires_it_to_its_reload_its_status_and_its_leaf(tmp_path: Path) -> None:
    """The name mDNS claimed goes into the HTTPS leaf, the status shows it, a reload that
    renames it closes the advertiser, and so does closing the daemon."""
    from hubd._daemon.backend import DaemonBackend
    from hubd._daemon.tls_refresh import TlsHolder
    from hubd.config import load_config
    from hubd.daemon import Daemon
    from hubd.paths import Paths

    class Leaf:
        mdns_hostnames: tuple[str, ...] = ()

        def refresh_tls(self) -> bool:
            return True

    config_file = tmp_path / "hubd.toml"
    config_file.write_text('mdns_name = "lab"\n')
    paths = Paths(tmp_path / "etc", tmp_path / "state", tmp_path / "run", tmp_path / "log")
    daemon = Daemon(paths, config_file, load_config(config_file), Timing())
    maker = Maker()
    daemon.advertising._make = maker
    try:
        daemon.advertising.sync_once(hub_wanted=True, https_port=None)
        leaf: TlsHolder = Leaf()
        daemon.tls.refresh_once(leaf)
        assert leaf.mdns_hostnames == ("lab-2.local",)
        mdns = DaemonBackend(daemon).status().mdns
        assert mdns is not None and mdns.hostname == "lab-2.local"
        config_file.write_text('mdns_name = "physics"\n')
        assert daemon._reload() == []
        assert maker.made[0].closed == 1 and daemon.advertising.config.mdns_name == "physics"
        daemon.advertising.sync_once(hub_wanted=True, https_port=None)
    finally:
        daemon.close()
        daemon.close()
    assert [a.closed for a in maker.made] == [1, 1]
