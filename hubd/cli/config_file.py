"""Changing one key of the config file: checked, written atomically, comments kept.

tomlkit keeps the person's comments and layout. The new text is checked as a whole (as
`hubd run` would load it) before it replaces the file in one rename: a failed or refused
change leaves the old file exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from hubd.config import load_config
from hubd.errors import ConfigError


def _read(path: Path) -> Any:
    import tomlkit

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        return tomlkit.parse(text)
    except Exception as exc:  # tomlkit's parse errors share no public base class
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def set_key(path: Path, key: str, value: Any) -> bool:
    """Write `key = value` into the file at `path` (made if missing); False if already so."""
    if isinstance(value, tuple):  # the config's lists are tuples; TOML has arrays
        value = list(value)
    document = _read(path)
    if key in document and document[key] == value:
        return False
    document[key] = value
    _replace(path, document)
    return True


def unset_key(path: Path, key: str) -> bool:
    """Remove `key` from the file; False if it was not there."""
    document = _read(path)
    if key not in document:
        return False
    del document[key]
    _replace(path, document)
    return True


def _replace(path: Path, document: Any) -> None:
    import tomlkit

    text = tomlkit.dumps(document)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        # The whole file as hubd will load it (the environment left out: it is not written).
        load_config(Path(temp), environ={})
        os.replace(temp, path)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(temp, str(path))) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
