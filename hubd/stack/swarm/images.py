"""Which reference other machines start a person's image by.

hubd pins people's images by id (pins.py), which is exact on this machine; another node cannot
pull an id. An image that came from a registry has a repository digest (`repo@sha256:…`): the
same bytes, pulled by each node on its own. An image built or loaded here has none; then the id
stays, and the image must be on each node already (`docker save | docker load`) — a node
without it rejects the task, and the person reads why at once on the spawn page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from docker.errors import ImageNotFound


def registry_ref(name: str, pinned: str, repo_digests: Sequence[str]) -> str:
    """The digest of `name`'s own repository if the image has one, else any digest, else the
    pinned id."""
    repository = name.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    for digest in repo_digests:
        if digest.split("@", 1)[0] == repository:
            return digest
    return repo_digests[0] if repo_digests else pinned


def node_image_refs(client: Any, user_images: Mapping[str, str]) -> dict[str, str]:
    refs = {}
    for name, pinned in user_images.items():
        try:
            digests = client.images.get(pinned).attrs.get("RepoDigests") or []
        except ImageNotFound:
            digests = []
        refs[name] = registry_ref(name, pinned, digests)
    return refs
