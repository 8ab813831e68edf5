"""The status contract: one typed record, JSON out for the socket, lenient JSON back in."""

from __future__ import annotations

import json

from hubd.config import Config
from hubd.status import (
    BackupStatus,
    HubContainer,
    HubState,
    MdnsView,
    NodeResource,
    NodeView,
    ProxyContainer,
    Record,
    StackView,
    Status,
    Supervision,
    UpdateView,
    UserServer,
)

# The keys `GET /status` and `hubd status --json` have always carried.
EARLIER_KEYS = {
    "state",
    "desired",
    "restart_count",
    "last_error",
    "url",
    "local_url",
    "mdns",
    "hub",
    "servers",
    "version",
}


def _full() -> Status:
    return Status.compose(
        Supervision(HubState.RUNNING, HubState.RUNNING, 2, None),
        Config(port=8123, mdns_name="lab"),
        StackView(
            hub=HubContainer(True, "running", True, "abc", "img:1", 12.5),
            proxy=ProxyContainer(True, "running", "def", "chp:4"),
            standby=ProxyContainer(True, "exited", "5b7", "chp:4"),
            front=ProxyContainer(True, "running", "f00", "hub:1"),
            servers=(UserServer("ann", "c-ann", True, "running"),),
            local_url="http://127.0.0.1:8123/",
            nodes=(
                NodeView("n1", "lab", "manager", "ready", "active", this_machine=True),
                NodeView(
                    "n2",
                    "gpubox",
                    "worker",
                    "down",
                    resources=(NodeResource("NVIDIA-GPU", 1),),
                    homes=("ann",),
                ),
            ),
        ),
        MdnsView("advertising", "lab-2.local", ("192.0.2.5",), "lab", None),
        "1.2.3",
        UpdateView(True, ("hub image: jupyterhub: 5.4.6 -> 6.1.1",), "2026-01-01T03:00:00+00:00"),
        backup=BackupStatus(target="/mnt/usb", scheduled=True, last_success_at=1.0, age_s=60.0),
    )


def test_json_round_trip_keeps_every_field_and_the_earlier_shape() -> None:
    status = _full()
    data = json.loads(json.dumps(status.to_json()))
    # Earlier keys all stay; new ones are only added (an older tray ignores them).
    assert set(data) == EARLIER_KEYS | {
        "update",
        "backup",
        "proxy",
        "standby",
        "front",
        "image_problems",
        "engine",
        "nodes",
        "fingerprint",
        "trust_url",
    }
    assert data["update"]["changes"] == ["hub image: jupyterhub: 5.4.6 -> 6.1.1"]
    assert data["backup"]["age_s"] == 60.0 and data["backup"]["target"] == "/mnt/usb"
    assert data["state"] == "running" and data["hub"]["uptime_s"] == 12.5
    assert data["proxy"] == {
        "exists": True,
        "status": "running",
        "container_id": "def",
        "image": "chp:4",
    }
    assert data["front"]["status"] == "running" and data["front"]["container_id"] == "f00"
    assert data["standby"]["status"] == "exited" and data["standby"]["container_id"] == "5b7"
    assert data["servers"] == [
        {"user": "ann", "container": "c-ann", "running": True, "status": "running"}
    ]
    assert data["nodes"][1]["resources"] == [{"kind": "NVIDIA-GPU", "count": 1}]
    assert Status.from_json(data) == status


def test_compose_prefers_the_advertised_name() -> None:
    status = _full()
    assert status.url == "http://lab-2.local:8123/"
    assert status.local_url == "http://127.0.0.1:8123/"
    bare = Status.compose(Supervision(HubState.STOPPED), Config(port=8123, mdns_enabled=False))
    assert bare.url == "http://localhost:8123/" and bare.hub == HubContainer()


def test_reading_is_lenient_about_odd_or_missing_values() -> None:
    odd = Status.from_json(
        {
            "state": 3,
            "restart_count": True,
            "hub": {"healthy": "yes", "uptime_s": 4},
            "servers": [{"user": "ann"}, 7, {"user": 8}],
            "mdns": "x",
            "from_the_future": 1,
        }
    )
    assert odd.state == "unknown" and odd.known_state is None
    assert odd.restart_count is None and odd.mdns is None
    assert odd.hub == HubContainer(uptime_s=4.0)
    assert [s.user for s in odd.servers] == ["ann", ""]
    assert Status.from_json(None) == Status()
    newer = Status.from_json({"state": "upgrading"})
    assert newer.state == "upgrading" and newer.known_state is None
    assert Status.from_json({"state": "failing"}).known_state is HubState.FAILING


def test_every_record_has_defaults_and_survives_its_own_json() -> None:
    # from_json falls back to defaults, so a field without one would break reading.
    for record in Record.__subclasses__():
        empty = record()
        assert record.from_json(json.loads(json.dumps(empty.to_json()))) == empty


def test_https_addresses_in_status() -> None:
    from hubd.config import Config
    from hubd.status import advertised_url

    config = Config()
    assert advertised_url(config, "jupyter.local", 443) == "https://jupyter.local/"
    assert advertised_url(config, "jupyter-2.local", 8443) == "https://jupyter-2.local:8443/"
    assert advertised_url(config, "jupyter.local") == "http://jupyter.local:8000/"
