"""The images a stack needs: hubd's hub image (built) and the user image(s) (pulled)."""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Iterable
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from hubd.errors import ImageError
from hubd.stack.naming import LABEL_SPEC, ROLE_HUB_IMAGE, StackNames
from hubd.stack.progress import Reporter

HUB_CONTEXT_FILES = ("Dockerfile", "hubd_hub.py", "jupyterhub_config.py", "docker_gate.py")


def hub_context_dir() -> Path:
    # hubd is installed as plain files (wheel or editable), so package data is a real folder.
    return Path(str(importlib.resources.files("hubd.stack") / "hub_image"))


def hub_image_hash(base_image: str, context: Path | None = None) -> str:
    context = context or hub_context_dir()
    digest = hashlib.sha256(base_image.encode())
    for name in HUB_CONTEXT_FILES:
        digest.update(name.encode() + b"\0" + (context / name).read_bytes())
    return digest.hexdigest()[:12]


def hub_image_tag(names: StackNames, base_image: str) -> str:
    return f"{names.hub_image_repo}:{hub_image_hash(base_image)}"


def image_present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def ensure_hub_image(
    client: docker.DockerClient,
    names: StackNames,
    base_image: str,
    reporter: Reporter,
    pull_base: bool = False,
) -> tuple[str, bool]:
    """Build the hub image unless this exact one exists. Returns (tag, built)."""
    tag = hub_image_tag(names, base_image)
    if image_present(client, tag) and not pull_base:
        return tag, False
    if pull_base or not image_present(client, base_image):
        pull_image(client, base_image, reporter)
    reporter.step(f"building the hub image {tag} on {base_image}")
    try:
        stream = client.api.build(
            path=str(hub_context_dir()),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            buildargs={"HUB_BASE_IMAGE": base_image},
            labels={**names.labels(ROLE_HUB_IMAGE), LABEL_SPEC: tag.rsplit(":", 1)[1]},
        )
        for item in stream:
            if "error" in item:
                raise ImageError(f"building the hub image failed: {str(item['error']).strip()}")
            if "stream" in item:
                reporter.build_output(str(item["stream"]))
    except (APIError, DockerException) as exc:
        raise ImageError(f"building the hub image failed: {_short(exc)}") from None
    return tag, True


def pull_image(client: docker.DockerClient, ref: str, reporter: Reporter) -> None:
    repository, tag = parse_repository_tag(ref)
    try:
        with reporter.pulling(ref) as progress:
            for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise ImageError(f"pulling {ref} failed: {event['error']}")
                progress.update(event)
    except (APIError, DockerException) as exc:
        raise ImageError(
            f"pulling {ref} failed: {_short(exc)} (check the image name and your network)"
        ) from None


def ensure_user_images(
    client: docker.DockerClient, images: Iterable[str], reporter: Reporter, pull: bool = False
) -> list[str]:
    """Pull user images now, so nobody's first spawn times out on a multi-GB pull."""
    pulled = []
    for ref in dict.fromkeys(images):
        if pull or not image_present(client, ref):
            pull_image(client, ref, reporter)
            pulled.append(ref)
    return pulled


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
