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

# On hubd's hub image: the base image it was built on, by name and by id.
LABEL_BASE_REF = "io.hubd.hub-base"
LABEL_BASE_ID = "io.hubd.hub-base-id"


def hub_context_dir() -> Path:
    # hubd is installed as plain files (wheel or editable), so package data is a real folder.
    return Path(str(importlib.resources.files("hubd.stack") / "hub_image"))


def hub_context_files(context: Path) -> list[str]:
    """Every file of the build context, in its folders too (all of it goes into the image or
    its build), so that any change to one makes another image; Python's byte-code caches are
    not hubd's."""
    return sorted(
        path.relative_to(context).as_posix()
        for path in context.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(context).parts)
        and path.suffix != ".pyc"
        and "__pycache__" not in path.parts
    )


def hub_image_hash(base_image_id: str, context: Path | None = None) -> str:
    """A hash of what the hub image is made of: the base image *id* (a moved tag is another
    base) and hubd's build context (a new hubd release is another image)."""
    context = context or hub_context_dir()
    digest = hashlib.sha256(base_image_id.encode())
    for name in hub_context_files(context):
        digest.update(name.encode() + b"\0" + (context / name).read_bytes())
    return digest.hexdigest()[:12]


def hub_image_tag(names: StackNames, base_image_id: str) -> str:
    return f"{names.hub_image_repo}:{hub_image_hash(base_image_id)}"


def image_id(client: docker.DockerClient, ref: str) -> str:
    try:
        return str(client.images.get(ref).id)
    except ImageNotFound:
        raise ImageError(f"the image {ref} is not on this machine") from None


def resolve_base_image(
    client: docker.DockerClient,
    base_image: str,
    reporter: Reporter,
    pinned_id: str = "",
    pull: bool = False,
) -> str:
    """The id of the hub base image to build on: the pinned one while the engine has it (a
    moved tag is not followed), else the local tag, else what a pull brings."""
    if pinned_id and not pull and image_present(client, pinned_id):
        return pinned_id
    if pull or not image_present(client, base_image):
        pull_image(client, base_image, reporter)
    return image_id(client, base_image)


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
    base_id: str = "",
    build_timeout_s: float | None = None,
) -> tuple[str, bool]:
    """Build the hub image on the pinned base (`base_id`), or on what `base_image` names now
    if nothing is pinned, unless this exact one exists. Returns (tag, built)."""
    base_id = resolve_base_image(client, base_image, reporter, base_id, pull=pull_base)
    tag = hub_image_tag(names, base_id)
    if image_present(client, tag):
        return tag, False
    reporter.step(f"building the hub image {tag} on {base_image} ({base_id[7:19]})")
    try:
        stream = client.api.build(
            path=str(hub_context_dir()),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            buildargs={"HUB_BASE_IMAGE": base_id},
            labels={
                **names.labels(ROLE_HUB_IMAGE),
                LABEL_SPEC: tag.rsplit(":", 1)[1],
                LABEL_BASE_REF: base_image,
                LABEL_BASE_ID: base_id,
            },
            # A long RUN step is silent; the client's own timeout is meant for single calls.
            timeout=int(build_timeout_s) if build_timeout_s else None,
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
) -> tuple[list[str], list[str]]:
    """Pull user images now, so nobody's first spawn times out on a multi-GB pull.

    Returns (pulled, problems): an image that cannot be pulled (offline, a typo in
    `allowed_images`) is a problem to report, not a reason to keep the hub down.
    """
    pulled, problems = [], []
    for ref in dict.fromkeys(images):
        try:
            if pull or not image_present(client, ref):
                pull_image(client, ref, reporter)
                pulled.append(ref)
        except ImageError as exc:
            problems.append(str(exc))
        except APIError as exc:  # e.g. "invalid reference format" for a typo
            problems.append(f"user image {ref}: {_short(exc)}")
    return pulled, problems


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
