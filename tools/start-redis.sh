#!/bin/bash
# A private Redis for the coordinator's tooz tests, as root on Debian:
#
#   bash tools/start-redis.sh          install (if needed), start, print URL
#   bash tools/start-redis.sh stop     stop it
#
# Debian's packaged start is not used (it needs systemd): redis-server runs
# by hand on 127.0.0.1 with its own port, directory and no persistence, so
# it does not collide with a system Redis or another test run.
#
# Environment:
#   FASTBOOT_REDIS_DIR    state directory (default /tmp/fastboot-redis)
#   FASTBOOT_REDIS_PORT   port on 127.0.0.1 (default 16379)

set -euo pipefail

DIR=${FASTBOOT_REDIS_DIR:-/tmp/fastboot-redis}
PORT=${FASTBOOT_REDIS_PORT:-16379}
URL="redis://127.0.0.1:$PORT"

log() {
    echo "start-redis: $*" >&2
}

port_open() {
    (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if [[ ${1:-start} == stop ]]; then
    if [[ -s $DIR/pid ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
        kill "$(cat "$DIR/pid")"
        log "stopped"
    fi
    rm -f "$DIR/pid"
    exit 0
fi

if port_open; then
    log "already running on 127.0.0.1:$PORT"
    echo "$URL"
    exit 0
fi
if ! command -v redis-server > /dev/null; then
    log "installing redis-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2
fi
mkdir -p "$DIR"
cat > "$DIR/redis.conf" <<CONF
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize no
dir $DIR
save ""
appendonly no
logfile ""
CONF
redis-server "$DIR/redis.conf" > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/pid"
for _ in $(seq 1 120); do
    if port_open; then
        log "running on 127.0.0.1:$PORT"
        echo "$URL"
        exit 0
    fi
    sleep 0.5
done
log "did not start; see $DIR/server.log"
exit 1
