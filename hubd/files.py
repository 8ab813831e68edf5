"""Writing a file so that a crash or power cut leaves the old or the new one, never half.

The one way hubd replaces a file it keeps (the desired state, image pins, the backup record,
service units): a temporary file with a unique name in the same folder (so the rename stays on
one file system and two writers never share it), its bytes fsynced, renamed over the target,
and the folder fsynced so the rename itself survives a power cut. On failure the temporary
file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, content: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `content` (text is UTF-8), the new file with permissions `mode`.

    Raises OSError (the target is then as it was). The folder must exist.
    """
    data = content.encode() if isinstance(content, str) else content
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # mkstemp makes 0600; chmod (not umask) gives the file exactly `mode`.
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_folder(path.parent)


def fsync_folder(path: Path) -> None:
    """Make a rename in `path` durable (the folder's entry on disk). Best effort: some file
    systems and platforms cannot open a folder for fsync."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
