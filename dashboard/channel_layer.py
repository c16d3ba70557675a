"""The Redis channel layer, with blocking reads shorter than redis-py's socket read timeout.

channels_redis waits for a message in blocking ``BZPOPMIN`` calls of ``brpop_timeout`` (5 s) and
redis-py 8 times out any socket read after ``socket_timeout`` (5 s by default): the two equal
timeouts raced, so a browser socket that heard nothing for five seconds could die with
``TimeoutError``. Shorter blocking reads keep every read well inside the socket's timeout without
raising it (a longer socket timeout also delays noticing a dead Redis).
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class RedisChannelLayer(_RedisChannelLayer):
    """channels_redis with 2 s blocking reads (an idle consumer costs one round trip per 2 s)."""

    brpop_timeout = 2
