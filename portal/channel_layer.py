"""The channel layer: channels_redis, whose connections wait for one another in a burst.

redis-py's pool refuses a connection beyond its `max_connections` ("Too many connections"): a
burst of websockets joining their groups at once (a deployment's reconnect storm) would fail
some handshakes. Here the pool waits up to `timeout` seconds for a free connection instead.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class WaitingRedisChannelLayer(RedisChannelLayer):  # type: ignore[misc]
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
