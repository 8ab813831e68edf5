import pytest

from hubd.errors import ConfigError
from hubd.timing import Timing, timing_from_env


def test_overrides_from_env() -> None:
    timing = timing_from_env({"HUBD_TIMING": "health_interval_s=0.5, health_failures=2"})
    assert timing.health_interval_s == 0.5 and timing.health_failures == 2
    assert timing.health_timeout_s == Timing().health_timeout_s
    assert timing_from_env({}) == Timing()


@pytest.mark.parametrize("text", ["nope=1", "health_failures=x"])
def test_bad_overrides(text: str) -> None:
    with pytest.raises(ConfigError, match="HUBD_TIMING"):
        timing_from_env({"HUBD_TIMING": text})
