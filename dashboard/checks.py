"""Deployment checks of our own, run by ``check --deploy`` (and so by ``manage.py release``)."""

from __future__ import annotations

import redis
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.caches, deploy=True)
def redis_never_evicts(app_configs=None, **kwargs) -> list[CheckMessage]:
    """The cache holds the trading drain's marks and slots and the breakers' state: a Redis
    that evicts keys under memory pressure would drop a "drain pending" mark and strand
    deposits, so production Redis must run with ``maxmemory-policy noeviction``."""
    if not settings.REDIS_URL:
        return []
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=3)
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError:  # CONFIG disabled (managed Redis): cannot tell from here
        return [Warning("Cannot read Redis's maxmemory-policy (CONFIG is disabled); make sure "
                        "it is 'noeviction'.", id="dashboard.W001")]
    except redis.RedisError as exc:
        return [Error(f"Redis at REDIS_URL does not answer: {exc}", id="dashboard.E002")]
    if policy != "noeviction":
        return [Error(f"Redis maxmemory-policy is {policy!r}; it must be 'noeviction' (the cache "
                      "holds the trading drain's marks, which must never be evicted).",
                      hint="redis-cli CONFIG SET maxmemory-policy noeviction, and in redis.conf",
                      id="dashboard.E001")]
    return []
