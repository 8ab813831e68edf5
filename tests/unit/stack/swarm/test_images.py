from __future__ import annotations

from hubd.stack.swarm.images import registry_ref

ID = "sha256:" + "1" * 64
DIGEST = "sha256:" + "2" * 64


def test_other_nodes_pull_the_pinned_version_by_its_digest() -> None:
    digests = [f"mirror.lab/base-notebook@{DIGEST}", f"quay.io/jupyter/base-notebook@{DIGEST}"]
    name = "quay.io/jupyter/base-notebook:latest"
    assert registry_ref(name, ID, digests) == f"quay.io/jupyter/base-notebook@{DIGEST}"
    assert registry_ref("localhost:5000/nb", ID, [f"localhost:5000/nb@{DIGEST}"]).startswith(
        "localhost:5000/nb@"
    )
    assert registry_ref("other/name:1", ID, digests) == digests[0]


def test_an_image_built_here_keeps_its_id() -> None:
    assert registry_ref("lab/gpu:1", ID, []) == ID
