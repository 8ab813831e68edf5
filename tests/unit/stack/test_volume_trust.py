"""hubd looks at a volume's labels, driver and options before it mounts one (volume_trust)."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import NotFound

from hubd.errors import UntrustedVolume
from hubd.stack.naming import StackNames
from hubd.stack.volume_trust import check_volume, volume_problem

NAMES = StackNames("home")
PLAIN = {
    "Name": "home-home-ann",
    "Driver": "local",
    "Options": None,
    "Labels": {"io.hubd.stack": "home", "io.hubd.role": "user-data", "io.hubd.user": "ann"},
}


class _Api:
    def __init__(self, volumes: dict[str, Any]) -> None:
        self.volumes = volumes

    def inspect_volume(self, name: str) -> Any:
        if name not in self.volumes:
            raise NotFound(name)
        return self.volumes[name]


class _Client:
    def __init__(self, volumes: dict[str, Any]) -> None:
        self.api = _Api(volumes)


def test_a_plain_volume_of_the_stack_is_used() -> None:
    assert volume_problem(PLAIN, NAMES) is None
    assert volume_problem({**PLAIN, "Options": {}}, NAMES) is None
    check_volume(_Client({}), NAMES, "home-home-new")  # made plain by the engine on mount


@pytest.mark.parametrize(
    "change, said",
    [
        ({"Options": {"type": "none", "o": "bind", "device": "/etc"}}, "driver options"),
        ({"Options": {"type": "tmpfs"}}, "driver options"),
        ({"Driver": "nfs-plugin"}, "volume driver 'nfs-plugin'"),
        ({"Labels": {"io.hubd.stack": "other", "io.hubd.role": "user-data"}}, "stack's label"),
        ({"Labels": {"io.hubd.stack": "home", "io.hubd.role": "hub-image"}}, "data volumes"),
        ({"Labels": None}, "stack's label"),
    ],
)
def test_anything_else_is_refused_in_one_line_naming_it(change: dict[str, Any], said: str) -> None:
    attrs = {**PLAIN, **change}
    problem = volume_problem(attrs, NAMES)
    assert problem is not None and said in problem
    with pytest.raises(UntrustedVolume) as refused:
        check_volume(_Client({"home-home-ann": attrs}), NAMES, "home-home-ann")
    message = str(refused.value)
    assert "home-home-ann" in message and "\n" not in message
