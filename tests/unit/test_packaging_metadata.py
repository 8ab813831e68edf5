"""The package's metadata: the licence file matches pyproject, and every third-party package
hubd imports is declared as a dependency (not left to arrive through another package)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Import name -> distribution name, where they differ.
DISTRIBUTION = {"PIL": "pillow", "Xlib": "python-xlib", "dbus_fast": "dbus-fast"}
# Runs inside the hub image (its own packages), not in hubd's environment.
HUB_IMAGE = ROOT / "hubd" / "stack" / "hub_image"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: argparse_manpage = argparse-manpage


def declared() -> set[str]:
    return {
        normalized(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])
        for spec in PYPROJECT["dependencies"]
    }


def third_party_imports() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in (ROOT / "hubd").rglob("*.py"):
        if HUB_IMAGE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "hubd" and top not in sys.stdlib_module_names:
                    found.setdefault(top, path)
    return found


def test_every_imported_package_is_a_dependency() -> None:
    wanted = declared()
    missing = {
        f"{DISTRIBUTION.get(name, name)} (imported in {path.relative_to(ROOT)})"
        for name, path in third_party_imports().items()
        if normalized(DISTRIBUTION.get(name, name)) not in wanted
    }
    assert not missing, f"imported but not declared in pyproject: {sorted(missing)}"


def test_pystray_is_bounded_while_hubd_uses_its_private_api() -> None:
    (spec,) = [s for s in PYPROJECT["dependencies"] if s.startswith("pystray")]
    assert "<0.20" in spec


def test_licence_file_matches_pyproject() -> None:
    assert PYPROJECT["license"] == "BSD-3-Clause"
    assert PYPROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text  # the third clause
    assert not any(c.startswith("License ::") for c in PYPROJECT["classifiers"])  # PEP 639
