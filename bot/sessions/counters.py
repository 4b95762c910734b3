"""Fixed-window counters in Redis, shared by the rate limits and the console's log-in throttle."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.sessions.errors import StoreUnavailable

# Count one hit; the first one starts the window (no key is ever left without a TTL).
# KEYS[1] the counter, ARGV[1] the window in ms; returns {hits so far, ms left in the window}.
FIXED_WINDOW_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class RedisWindowCounter:
    """Fixed windows in Redis: one atomic script per hit, so every replica counts together."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._hit = client.register_script(FIXED_WINDOW_HIT)

    async def hit(self, key: str, window_s: float) -> tuple[int, int]:
        """Count one hit on `key` (the first starts a window of `window_s`): (hits in this window,
        ms until it ends). StoreUnavailable for any Redis failure: a limiter decides what then."""
        try:
            count, ttl_ms = await self._hit(keys=[key], args=[int(window_s * 1000)])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        return int(count), int(ttl_ms)
