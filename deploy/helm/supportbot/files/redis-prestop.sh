#!/bin/sh
# Before a master pod stops (rolling update, drain): ask Sentinel to promote a replica first and
# wait for it, so writes pause for a moment instead of failing until down-after-milliseconds.
set -u
: "${REDIS_PORT:=6379}" "${SENTINEL_PORT:=26379}" "${MASTER_NAME:=supportbot}"
export REDISCLI_AUTH="$REDIS_PASSWORD"
role=$(redis-cli -p "$REDIS_PORT" --raw role 2>/dev/null | head -n 1)
[ "$role" = "master" ] || exit 0
# "OK", or an error such as NOGOODSLAVE when no replica can take over (then just stop).
reply=$(redis-cli -p "$SENTINEL_PORT" --raw sentinel failover "$MASTER_NAME" 2>&1 | head -n 1)
[ "$reply" = "OK" ] || exit 0
i=0
while [ $i -lt 20 ]; do
  sleep 1
  role=$(redis-cli -p "$REDIS_PORT" --raw role 2>/dev/null | head -n 1)
  [ "$role" = "master" ] || exit 0
  i=$((i + 1))
done
exit 0
