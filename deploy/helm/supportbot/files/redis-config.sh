#!/bin/sh
# Writes redis.conf and sentinel.conf for one pod of the bundled Redis (an init container runs it).
# The current master is whatever the other pods' sentinels say; when none answers (first start),
# it is the first host in PEERS. Redis keeps an append-only file; Sentinel announces hostnames, so
# a pod keeps its identity across restarts even when its IP changes.
#
# Environment: ME (this pod's host name), PEERS (all pods' host names, ordinal order),
# REDIS_PASSWORD, MASTER_NAME, QUORUM, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, REDIS_PORT, SENTINEL_PORT,
# CONF_DIR (written), DATA_DIR (Redis' working directory).
set -eu
: "${REDIS_PORT:=6379}" "${SENTINEL_PORT:=26379}" "${MASTER_NAME:=supportbot}" "${QUORUM:=2}"
: "${DOWN_AFTER_MS:=5000}" "${FAILOVER_TIMEOUT_MS:=60000}" "${CONF_DIR:=/conf}" "${DATA_DIR:=/data}"
export REDISCLI_AUTH="$REDIS_PASSWORD"

master=""
for peer in $PEERS; do
  [ "$peer" = "$ME" ] && continue
  answer=$(timeout 3 redis-cli -h "$peer" -p "$SENTINEL_PORT" --raw \
           sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1) || answer=""
  case "$answer" in
    "" | *" "* | ERR* | NOAUTH* | WRONGPASS* | NOPERM* | "(error)"*) ;;
    *) master="$answer"; break ;;
  esac
done
if [ -z "$master" ]; then
  set -- $PEERS
  master="$1"
fi
echo "redis-config: I am $ME; the master is $master"

mkdir -p "$CONF_DIR" "$DATA_DIR"
cat > "$CONF_DIR/redis.conf" <<CONF
port $REDIS_PORT
bind * -::*
protected-mode no
dir $DATA_DIR
appendonly yes
appendfsync everysec
requirepass "$REDIS_PASSWORD"
masterauth "$REDIS_PASSWORD"
replica-announce-ip $ME
replica-announce-port $REDIS_PORT
CONF
if [ "$master" != "$ME" ]; then
  echo "replicaof $master $REDIS_PORT" >> "$CONF_DIR/redis.conf"
fi

# Sentinel rewrites this file as it learns; it is rebuilt on every start from what the others know.
cat > "$CONF_DIR/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind * -::*
protected-mode no
dir $CONF_DIR
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ME
sentinel announce-port $SENTINEL_PORT
requirepass "$REDIS_PASSWORD"
sentinel sentinel-pass "$REDIS_PASSWORD"
sentinel monitor $MASTER_NAME $master $REDIS_PORT $QUORUM
sentinel auth-pass $MASTER_NAME "$REDIS_PASSWORD"
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
CONF
