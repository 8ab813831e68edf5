from tests.integration.docker_env import docker_client, stack_env, test_images

__all__ = ["docker_client", "stack_env", "test_images"]
