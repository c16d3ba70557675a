"""The production channel layer (Redis) keeps a quiet socket alive."""

from __future__ import annotations

import asyncio
import time

import redis
from channels.layers import get_channel_layer

from dashboard.settings import redis_channel_layer
from tests.live.conftest import REDIS_TEST_URL


async def test_a_channel_that_hears_nothing_for_longer_than_a_read_block_still_gets_its_message(
    settings,
):
    """A consumer waits in blocking reads of 5 s: with redis-py's own 5 s read timeout the wait
    raised ``TimeoutError`` and killed the consumer (a margin monitor on a quiet platform lost
    its socket). The layer is built exactly as the settings build it for ``REDIS_URL``."""
    from channels.layers import channel_layers

    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_TEST_URL)}
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        channel = await layer.new_channel()

        async def send_later() -> None:
            await asyncio.sleep(6.5)
            await layer.send(channel, {"type": "margins.changed"})

        sender = asyncio.create_task(send_later())
        started = time.monotonic()
        message = await asyncio.wait_for(layer.receive(channel), timeout=20)
        await sender
        assert message == {"type": "margins.changed"}
        assert time.monotonic() - started >= 6
        await layer.flush()
    finally:
        channel_layers.backends.clear()
