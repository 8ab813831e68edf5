"""Everything that talks to Docker: the engine, object names, images, the hub stack itself, the
hub's API and people's accounts. The hub image's files (`hub_image/`) sit beside `settings`,
which writes what they read."""

from hubd.stack.lifecycle import ContainerState, HubContainerState, Stack, UpResult

__all__ = ["ContainerState", "HubContainerState", "Stack", "UpResult"]
