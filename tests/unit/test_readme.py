"""The README's config table names every key with its real default."""

from __future__ import annotations

from pathlib import Path

from hubd.config import Config, config_keys

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_config_key_is_documented_with_its_default() -> None:
    text = README.read_text()
    defaults = Config()
    for key in config_keys():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, f"README lacks config key {key}"
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
    assert "pip install . && hubd run" in text
    assert "./scripts/test" in text
    assert (README.parent / "scripts" / "test").stat().st_mode & 0o111
    assert "exec ./scripts/test" in (README.parent / ".ci" / "run").read_text()
