"""The versions of the Python packages inside an image, read from a throwaway container.

What people care about in an upgrade is "JupyterHub 5.4 -> 6.1", not an image id. Image
labels rarely say it (the stand-ins and many rebuilt images carry none), so hubd asks the
image's own Python, which is in every hub and docker-stacks image.
"""

from __future__ import annotations

import json

import docker
from docker.errors import APIError, ContainerError, ImageNotFound

HUB_PACKAGES = (
    "jupyterhub",
    "dockerspawner",
    "jupyterhub-nativeauthenticator",
    "jupyterhub-idle-culler",
)
USER_PACKAGES = ("jupyterlab", "jupyter_server", "jupyterhub")

_SCRIPT = """
import json, sys
from importlib import metadata
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def package_versions(
    client: docker.DockerClient, image: str, packages: tuple[str, ...]
) -> dict[str, str]:
    """name -> version for the packages the image has; {} when the image cannot say."""
    try:
        output = client.containers.run(
            image,
            ["-c", _SCRIPT, *packages],
            entrypoint=["python3"],
            network_mode="none",
            remove=True,
            labels={"io.hubd.role": "version-probe"},
        )
        found = json.loads(bytes(output).decode().strip().splitlines()[-1])
    except (APIError, ContainerError, ImageNotFound, ValueError, IndexError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


__all__ = ["HUB_PACKAGES", "USER_PACKAGES", "package_versions"]
