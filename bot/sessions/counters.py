"""Fixed-window counters in Redis, shared by the rate limits and the console's log-in throttle."""

from __future__ import annotations

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
