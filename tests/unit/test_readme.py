"""The README's quickstart and two commands, the docs' config table (every key with its real
default), and every relative link in README.md and docs/ pointing at something that exists."""

from __future__ import annotations

import re
from pathlib import Path

from hubd.config import Config, config_keys

README = Path(__file__).resolve().parents[2] / "README.md"
DOCS = README.parent / "docs"
CONFIG_DOC = DOCS / "configuration.md"


def test_every_config_key_is_documented_with_its_default() -> None:
    text = CONFIG_DOC.read_text()
    defaults = Config()
    for key in config_keys():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, f"docs/configuration.md lacks config key {key}"
        value = getattr(defaults, key)
        if value is None:
            assert "(not set)" in row
        elif isinstance(value, bool):
            assert f"`{str(value).lower()}`" in row
        elif isinstance(value, str):
            assert f'`"{value}"`' in row
        elif isinstance(value, tuple):  # a list in TOML
            assert f"`{list(value)}`" in row
        else:
            assert f"`{value}`" in row


def test_readme_commands_exist() -> None:
    text = README.read_text()
    # PEP 668: the system Python refuses `pip install .`; the quickstart uses pipx.
    assert "pipx install ." in text and "pip install ." not in text.replace("pipx install .", "")
    for step in ("usermod -aG docker", "hubd service install", "hubd run", "hubd status"):
        assert step in text, step
    assert "./scripts/test" in text
    assert (README.parent / "scripts" / "test").stat().st_mode & 0o111
    assert "exec ./scripts/test" in (README.parent / ".ci" / "run").read_text()


def test_readme_fits_a_screen_and_docs_have_contents() -> None:
    # The first screen is the whole quickstart; the rest is a short list of links.
    lines = README.read_text().splitlines()
    assert lines.index("## Tests") <= 50
    assert len(lines) <= 80
    contents = (DOCS / "README.md").read_text()
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in contents, f"docs/README.md does not list {page.name}"


_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_relative_links_resolve() -> None:
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target, _anchor in _LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
