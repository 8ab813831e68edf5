"""Everything that talks to Docker: the engine, object names, images, the hub stack itself, the
hub's API and people's accounts. The hub image's files (`hub_image/`) sit beside `settings`,
which writes what they read.

`from hubd.stack import Stack` still works, but loads `lifecycle` (and with it the Docker SDK)
only then: importing a light module such as `hubd.stack.naming` must not cost the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubd.stack.lifecycle import ContainerState, HubContainerState, Stack, UpResult

__all__ = ["ContainerState", "HubContainerState", "Stack", "UpResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("hubd.stack.lifecycle"), name)
    raise AttributeError(f"module 'hubd.stack' has no attribute {name!r}")
