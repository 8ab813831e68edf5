from tests.integration.docker_env import (
    broken_hub_base,
    docker_client,
    half_migrating_hub_base,
    login_breaking_hub_base,
    stack_env,
    test_images,
)
from tests.integration.swarm_lab import swarm_lab, swarm_lab_session

__all__ = [
    "broken_hub_base",
    "docker_client",
    "half_migrating_hub_base",
    "login_breaking_hub_base",
    "stack_env",
    "swarm_lab",
    "swarm_lab_session",
    "test_images",
]
