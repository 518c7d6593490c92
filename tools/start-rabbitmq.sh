#!/bin/bash
# A private RabbitMQ for the notification listener test, as root on Debian:
#
#   bash tools/start-rabbitmq.sh          install (if needed), start, print URL
#   bash tools/start-rabbitmq.sh stop     stop it
#
# Debian's packaged start is not used (it switches user and needs
# systemd): rabbitmq-server runs by hand with its own node name, ports on
# 127.0.0.1, mnesia and log directories, so it does not collide with a
# system RabbitMQ or another test run.
#
# Environment:
#   FASTBOOT_RABBIT_DIR    state directory (default /tmp/fastboot-rabbitmq)
#   FASTBOOT_RABBIT_PORT   AMQP port on 127.0.0.1 (default 15672); the
#                          Erlang distribution port is this + 2
#   FASTBOOT_RABBIT_NODE   node name (default fastboot-test)

set -euo pipefail

DIR=${FASTBOOT_RABBIT_DIR:-/tmp/fastboot-rabbitmq}
PORT=${FASTBOOT_RABBIT_PORT:-15672}
NODE=${FASTBOOT_RABBIT_NODE:-fastboot-test}@localhost
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
URL="rabbit://guest:guest@127.0.0.1:$PORT/"

log() {
    echo "start-rabbitmq: $*" >&2
}

port_open() {
    (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if [[ ${1:-start} == stop ]]; then
    if [[ -s $DIR/pid ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
        # rabbitmq-server's script passes SIGTERM on to the Erlang VM.
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
if [[ ! -x $SERVER ]]; then
    log "installing rabbitmq-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server \
        >&2
fi
mkdir -p "$DIR/mnesia" "$DIR/log"
cat > "$DIR/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$PORT
loopback_users = none
CONF
echo '[].' > "$DIR/enabled_plugins"
ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
env RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$PORT" RABBITMQ_DIST_PORT=$((PORT + 2)) \
    RABBITMQ_MNESIA_BASE="$DIR/mnesia" RABBITMQ_LOG_BASE="$DIR/log" \
    RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$ERL_ARGS" \
    HOME="$DIR" "$SERVER" > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/pid"
for _ in $(seq 1 240); do
    if port_open; then
        log "running on 127.0.0.1:$PORT"
        echo "$URL"
        exit 0
    fi
    sleep 0.5
done
log "did not start; see $DIR/server.log"
exit 1
