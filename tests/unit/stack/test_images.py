from __future__ import annotations

import re
import shutil
from pathlib import Path

from hubd.stack.images import hub_context_dir, hub_context_files, hub_image_hash


def test_every_file_the_hub_image_copies_is_in_its_hash(tmp_path: Path) -> None:
    context = tmp_path / "hub_image"
    shutil.copytree(hub_context_dir(), context, ignore=shutil.ignore_patterns("__pycache__"))
    dockerfile = (context / "Dockerfile").read_text()
    sources = [
        name
        for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M)
        for name in line.split()[:-1]
    ]
    # A copied folder (templates/) stands for every file in it.
    copied = {
        path.relative_to(context).as_posix()
        for name in sources
        for path in (
            [context / name] if (context / name).is_file() else (context / name).rglob("*")
        )
        if path.is_file()
    }
    assert "templates/hubd-login.html" in copied
    assert copied and copied <= set(hub_context_files(context))
    before = hub_image_hash("sha256:base", context)
    for name in sorted(copied):
        path = context / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert hub_image_hash("sha256:base", context) != before, name
        path.write_bytes(original)
    assert hub_image_hash("sha256:base", context) == before
