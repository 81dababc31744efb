"""The fidelity tests run through both stores: the real redis-server fixture of the Redis tests."""

from tests.redis.conftest import redis_url

__all__ = ["redis_url"]
