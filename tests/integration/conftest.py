from tests.integration.docker_env import (
    broken_hub_base,
    docker_client,
    half_migrating_hub_base,
    login_breaking_hub_base,
    stack_env,
    test_images,
)

__all__ = [
    "broken_hub_base",
    "docker_client",
    "half_migrating_hub_base",
    "login_breaking_hub_base",
    "stack_env",
    "test_images",
]
