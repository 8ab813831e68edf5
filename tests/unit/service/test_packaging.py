"""packaging/ ships inside the wheel as hubd.packaging; the package list must stay complete.

Building and installing real wheels is tests/integration/test_service_wheel.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hubd.service import read_template, templates_location

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[3]


def setuptools_config() -> dict[str, Any]:  # TOML, as tomllib reads it
    with (REPO / "pyproject.toml").open("rb") as fh:
        config: dict[str, Any] = tomllib.load(fh)["tool"]["setuptools"]
    return config


def test_every_python_package_is_listed_for_the_wheel() -> None:
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "hubd").rglob("__init__.py")
    }
    listed = set(setuptools_config()["packages"])
    missing = found - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"hubd.packaging"}


def test_the_templates_are_package_data() -> None:
    config = setuptools_config()
    assert config["package-dir"] == {"hubd.packaging": "packaging"}
    patterns = config["package-data"]["hubd.packaging"]
    templates = [p for p in (REPO / "packaging").rglob("*") if p.is_file()]
    assert templates
    for template in templates:
        folder = template.relative_to(REPO / "packaging").parts[0]
        assert f"{folder}/**/*" in patterns, f"{template} is not package data"


def test_templates_are_readable_from_here() -> None:
    assert templates_location().name == "packaging"
    assert read_template("systemd/system/hubd.service").startswith("# hubd's daemon")
