"""`hubd` run as a person types it, in a process of its own, with its control socket's folder
(RUNTIME_DIRECTORY) chosen by the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def hubd(*args: str, runtime: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "RUNTIME_DIRECTORY": str(runtime)},
        timeout=60,
    )
