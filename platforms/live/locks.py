"""One bridge per platform, however many ``stream`` processes run.

Each ``stream`` process carries every platform it can lock, each bridge a task on its one
asyncio loop; the others stand by for the rest and take over a platform within the lock's
TTL (``REALTIME_BRIDGE_LOCK_SECONDS``) of its holder's death. The lock's value names its
holder (``host:pid:random``).

On the Redis layer a second ``manage.py stream`` must not double the events, so each bridge
holds ``realtime:bridge:<pk>`` (``SET NX PX``), renews it every third of its TTL with a
compare-and-extend script, and stops if it ever loses it; a standby copy retries until the
holder dies and the key expires. Without Redis one process is all there is: a process-local
set does the same job (two supervisors in one process, e.g. a test and the lazy starter).
"""

from __future__ import annotations

import os
import secrets
import socket

import redis.asyncio as aioredis
from django.conf import settings

_local_held: set[str] = set()  # keys

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class BridgeLock:
    def __init__(self, platform_pk: int, ttl: float | None = None,
                 redis_url: str | None = None, key: str | None = None) -> None:
        ttl = settings.REALTIME_BRIDGE_LOCK_SECONDS if ttl is None else ttl
        self.pk = int(platform_pk)
        self.key = key or f"realtime:bridge:{self.pk}"
        self.ttl_ms = int(ttl * 1000)
        #: who holds it, readable in Redis (``host:pid:random``): which process relays what
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self.redis_url = settings.REDIS_URL if redis_url is None else redis_url
        self._redis = None
        self.held = False

    @property
    def renew_every(self) -> float:
        return self.ttl_ms / 3000.0

    async def _client(self):
        if self._redis is None:
            self._redis = aioredis.from_url(self.redis_url)
        return self._redis

    async def acquire(self) -> bool:
        if not self.redis_url:
            if self.key in _local_held:
                return False
            _local_held.add(self.key)
            self.held = True
            return True
        r = await self._client()
        self.held = bool(await r.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    async def renew(self) -> bool:
        if not self.redis_url:
            return self.held
        r = await self._client()
        self.held = bool(await r.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        return self.held

    async def release(self) -> None:
        if not self.redis_url:
            if self.held:
                _local_held.discard(self.key)
            self.held = False
            return
        if self._redis is not None:
            try:
                await self._redis.eval(_RELEASE, 1, self.key, self.token)
            finally:
                await self._redis.aclose()
                self._redis = None
        self.held = False
