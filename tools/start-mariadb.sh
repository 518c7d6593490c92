#!/bin/bash
# A private MariaDB for the MySQL tests, as root on Debian:
#
#   bash tools/start-mariadb.sh          install (if needed), start, print URL
#   bash tools/start-mariadb.sh stop     stop it
#
# Debian's packaged start (systemd / invoke-rc.d) is not used: mariadbd
# runs by hand on 127.0.0.1 with its own datadir, port and socket, so it
# does not collide with a system MariaDB. Idempotent: a second start finds
# the running server and only prints the URL. The user openstack_citest
# (password openstack_citest) gets every right on the databases named
# openstack_citest* (the oslo.db opportunistic convention); the tests
# create one such database per test.
#
# Environment:
#   FASTBOOT_MARIADB_DIR   state directory (default /tmp/fastboot-mariadb):
#                          data/, mariadbd.sock, mariadbd.pid, mariadbd.log
#   FASTBOOT_MARIADB_PORT  TCP port on 127.0.0.1 (default 13306: below the
#                          ephemeral range, where an outgoing connection can
#                          hold the port and the bind fails)

set -euo pipefail

DIR=${FASTBOOT_MARIADB_DIR:-/tmp/fastboot-mariadb}
PORT=${FASTBOOT_MARIADB_PORT:-13306}
DATADIR=$DIR/data
SOCKET=$DIR/mariadbd.sock
PIDFILE=$DIR/mariadbd.pid
LOG=$DIR/mariadbd.log
USER_NAME=openstack_citest
URL="mysql+pymysql://$USER_NAME:$USER_NAME@127.0.0.1:$PORT/"

log() {
    echo "start-mariadb: $*" >&2
}

running_pid() {
    # The pid of our mariadbd if it runs, else nothing.
    local pid
    [[ -s $PIDFILE ]] || return 0
    pid=$(< "$PIDFILE")
    if [[ -d /proc/$pid ]] && \
            grep -q mariadbd "/proc/$pid/comm" 2> /dev/null; then
        echo "$pid"
    fi
}

client() {
    # Root over the private socket (unix_socket authentication).
    mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot "$@"
}

stop() {
    local pid
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping mariadbd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        log "mariadbd $pid did not stop in 30 s; killing it"
        kill -KILL "$pid"
    fi
    rm -f "$PIDFILE"
}

install() {
    if command -v mariadbd > /dev/null && \
            command -v mariadb-install-db > /dev/null && \
            command -v mariadb > /dev/null; then
        return 0
    fi
    if [[ $(id -u) != 0 ]]; then
        log "mariadb-server is missing and only root can install it"
        exit 1
    fi
    log "installing mariadb-server"
    local apt=(apt-get -q -y -o Dpkg::Options::=--force-confold)
    # The package's own start fails in containers without init; keep it
    # from trying (policy-rc.d 101: action forbidden).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
        --no-install-recommends mariadb-server mariadb-client >&2 || rc=$?
    if [[ $rc != 0 ]]; then
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >&2
        rc=0
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
            --no-install-recommends mariadb-server mariadb-client >&2 || rc=$?
    fi
    if [[ $created_policy == 1 ]]; then
        rm -f "$policy"
    fi
    [[ $rc == 0 ]] || exit "$rc"
}

start() {
    install
    mkdir -p "$DIR"
    local run_as=()
    if [[ $(id -u) == 0 ]]; then
        # mariadbd refuses to run as root unless told; run it as mysql
        # when the package made that user.
        if id mysql > /dev/null 2>&1; then
            run_as=(--user=mysql)
            chown mysql: "$DIR"
        else
            run_as=(--user=root)
        fi
    fi
    if [[ -n $(running_pid) ]]; then
        log "already running (pid $(< "$PIDFILE"))"
    else
        if [[ ! -d $DATADIR/mysql ]]; then
            log "initialising $DATADIR"
            rm -rf "$DATADIR"
            mariadb-install-db --no-defaults "${run_as[@]}" \
                --datadir="$DATADIR" --auth-root-authentication-method=socket \
                --skip-test-db > "$DIR/install-db.log" 2>&1 || {
                cat "$DIR/install-db.log" >&2
                exit 1
            }
        fi
        if (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null; then
            log "port $PORT on 127.0.0.1 is taken by another process;" \
                "set FASTBOOT_MARIADB_PORT"
            exit 1
        fi
        log "starting mariadbd on 127.0.0.1:$PORT"
        # setsid: the server outlives this script and tox's process group.
        setsid mariadbd --no-defaults "${run_as[@]}" \
            --datadir="$DATADIR" --socket="$SOCKET" --pid-file="$PIDFILE" \
            --bind-address=127.0.0.1 --port="$PORT" \
            --skip-name-resolve --log-error="$LOG" \
            --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
            --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 \
            --character-set-server=utf8mb4 \
            --collation-server=utf8mb4_general_ci \
            --max-connections=500 \
            < /dev/null > /dev/null 2>&1 &
        local ok=0
        for _ in $(seq 1 300); do
            if client -e 'SELECT 1' > /dev/null 2>&1; then
                ok=1
                break
            fi
            sleep 0.1
        done
        if [[ $ok != 1 ]]; then
            log "mariadbd did not answer in 30 s; its log:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
    fi
    client <<EOF
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_NAME';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_NAME';
GRANT ALL PRIVILEGES ON \`${USER_NAME//_/\\_}%\`.* TO '$USER_NAME'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${USER_NAME//_/\\_}%\`.* TO '$USER_NAME'@'localhost';
FLUSH PRIVILEGES;
EOF
    echo "$URL"
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 [start|stop]" >&2
        exit 2
        ;;
esac
