"""The service templates reach a real installation: a wheel in a fresh virtualenv, and an
editable install. Builds from a copy of the tree, so the shared checkout gets no build/ or
egg-info litter. Needs pip and the machine's package index (for setuptools in the isolated
build); takes about half a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = [
    "systemd/system/hubd.service",
    "systemd/user/hubd.service",
    "systemd/autostart/hubd-tray.desktop",
    "launchd/LaunchDaemons/org.hubd.daemon.plist",
    "launchd/LaunchAgents/org.hubd.daemon.plist",
    "launchd/LaunchAgents/org.hubd.tray.plist",
]
WHERE_ARE_TEMPLATES = "from hubd.service import templates_location; print(templates_location())"


def run(argv: list[str | Path], cwd: Path | str = "/") -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, check=False, timeout=600
    )
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("src") / "hubd-src"
    copy.mkdir()
    shutil.copy2(REPO / "pyproject.toml", copy)
    for folder in ("hubd", "packaging"):
        shutil.copytree(
            REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return copy


def make_venv(folder: Path) -> Path:
    # System site-packages provide hubd's dependencies; hubd itself comes from the install.
    venv.create(folder, with_pip=True, system_site_packages=True)
    return folder / "bin"


def test_wheel_carries_the_templates_and_they_work_installed(
    source_copy: Path, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source_copy])
    [wheel] = dist.glob("hubd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in TEMPLATES:
        assert f"hubd/packaging/{template}" in names
    assert not any(name.startswith("packaging/") for name in names)  # never a top-level package

    bin_dir = make_venv(tmp_path / "venv")
    run([bin_dir / "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    location = run([bin_dir / "python", "-c", WHERE_ARE_TEMPLATES]).strip()
    assert location.startswith(str(tmp_path / "venv")) and location.endswith("hubd/packaging")

    root = tmp_path / "root"
    root.mkdir()
    run([bin_dir / "hubd", "service", "install", "--system", "--root", root])
    unit = (root / "etc/systemd/system/hubd.service").read_text()
    assert f"ExecStart={bin_dir / 'hubd'} run" in unit.splitlines()
    run([bin_dir / "hubd", "service", "uninstall", "--root", root])
    assert list(root.iterdir()) == []


def test_editable_install_finds_the_templates_in_the_tree(
    source_copy: Path, tmp_path: Path
) -> None:
    bin_dir = make_venv(tmp_path / "venv")
    run([bin_dir / "pip", "install", "-q", "--no-deps", "-e", source_copy])
    location = run([bin_dir / "python", "-c", WHERE_ARE_TEMPLATES]).strip()
    assert location == str(source_copy / "packaging")
    assert run([bin_dir / "hubd", "--version"]).startswith("hubd ")
    env_free = subprocess.run(
        [bin_dir / "hubd", "--version"],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.defpath},
        check=False,
    )
    assert env_free.returncode == 0
