#!/bin/bash
# A private PostgreSQL for the PostgreSQL tests, as root on Debian:
#
#   bash tools/start-postgresql.sh          install (if needed), start, print URL
#   bash tools/start-postgresql.sh stop     stop it
#
# Debian's packaged cluster and start (systemd / invoke-rc.d) are not used:
# postgres runs by hand, as the postgres user, on 127.0.0.1 with its own
# data directory, port and socket directory, so it does not collide with a
# system PostgreSQL. Idempotent: a second start finds the running server
# and only prints the URL. The role openstack_citest (password
# openstack_citest, may create databases) owns a database of the same name
# (the oslo.db opportunistic convention); the tests create one database
# per test from there. Durability is off (fsync, synchronous_commit): it
# is a throw-away test server.
#
# Environment:
#   FASTBOOT_POSTGRESQL_DIR   state directory (default
#                             /tmp/fastboot-postgresql): data/, the socket,
#                             postgres.log
#   FASTBOOT_POSTGRESQL_PORT  TCP port on 127.0.0.1 (default 15432: below
#                             the ephemeral range, where an outgoing
#                             connection can hold the port and the bind fails)

set -euo pipefail

DIR=${FASTBOOT_POSTGRESQL_DIR:-/tmp/fastboot-postgresql}
PORT=${FASTBOOT_POSTGRESQL_PORT:-15432}
DATADIR=$DIR/data
PIDFILE=$DATADIR/postmaster.pid
LOG=$DIR/postgres.log
USER_NAME=openstack_citest
URL="postgresql+psycopg2://$USER_NAME:$USER_NAME@127.0.0.1:$PORT/$USER_NAME"

log() {
    echo "start-postgresql: $*" >&2
}

bindir() {
    # Debian keeps the server binaries out of PATH, one directory per
    # major version: take the newest.
    local dir
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -x $dir/postgres && -x $dir/initdb && -x $dir/psql ]]; then
        echo "$dir"
    elif command -v postgres > /dev/null && \
            command -v initdb > /dev/null && command -v psql > /dev/null; then
        dirname "$(command -v postgres)"
    fi
}

as_postgres() {
    # postgres refuses to run as root: run it and its tools as the
    # package's postgres user.
    # From /: the postgres user may not read the current directory.
    if [[ $(id -u) == 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

running_pid() {
    # The pid of our postgres if it runs, else nothing.
    local pid
    [[ -s $PIDFILE ]] || return 0
    pid=$(head -n 1 "$PIDFILE")
    if [[ -d /proc/$pid ]] && \
            grep -q postgres "/proc/$pid/comm" 2> /dev/null; then
        echo "$pid"
    fi
}

client() {
    # The superuser over the private socket (trust for local sockets).
    as_postgres "$BINDIR/psql" --no-psqlrc -X -q -v ON_ERROR_STOP=1 \
        -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"
}

stop() {
    local pid
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        log "not running"
        return 0
    fi
    log "stopping postgres (pid $pid)"
    # SIGINT: fast shutdown, without waiting for clients to disconnect.
    kill -INT "$pid"
    for _ in $(seq 1 300); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        log "postgres $pid did not stop in 30 s; killing it"
        kill -KILL "$pid"
    fi
}

install() {
    BINDIR=$(bindir)
    if [[ -n $BINDIR ]] && { [[ $(id -u) != 0 ]] || id postgres \
            > /dev/null 2>&1; }; then
        return 0
    fi
    if [[ $(id -u) != 0 ]]; then
        log "postgresql is missing and only root can install it"
        exit 1
    fi
    log "installing postgresql"
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
        --no-install-recommends postgresql postgresql-client >&2 || rc=$?
    if [[ $rc != 0 ]]; then
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >&2
        rc=0
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
            --no-install-recommends postgresql postgresql-client >&2 || rc=$?
    fi
    if [[ $created_policy == 1 ]]; then
        rm -f "$policy"
    fi
    [[ $rc == 0 ]] || exit "$rc"
    BINDIR=$(bindir)
    if [[ -z $BINDIR ]]; then
        log "postgresql installed but its binaries were not found"
        exit 1
    fi
}

start() {
    install
    mkdir -p "$DIR"
    if [[ $(id -u) == 0 ]]; then
        chown postgres: "$DIR"
    fi
    chmod 700 "$DIR"
    if [[ -n $(running_pid) ]]; then
        log "already running (pid $(running_pid))"
    else
        if [[ ! -s $DATADIR/PG_VERSION ]]; then
            log "initialising $DATADIR"
            rm -rf "$DATADIR"
            as_postgres "$BINDIR/initdb" -D "$DATADIR" -U postgres \
                --auth-local=trust --auth-host=scram-sha-256 \
                --encoding=UTF8 --locale=C.UTF-8 \
                > "$DIR/initdb.log" 2>&1 || {
                cat "$DIR/initdb.log" >&2
                exit 1
            }
        fi
        if (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null; then
            log "port $PORT on 127.0.0.1 is taken by another process;" \
                "set FASTBOOT_POSTGRESQL_PORT"
            exit 1
        fi
        log "starting postgres on 127.0.0.1:$PORT"
        # setsid: the server outlives this script and tox's process group.
        as_postgres setsid "$BINDIR/postgres" -D "$DATADIR" \
            -c listen_addresses=127.0.0.1 -c port="$PORT" \
            -c unix_socket_directories="$DIR" \
            -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=300 \
            -c shared_buffers=32MB \
            < /dev/null > "$LOG" 2>&1 &
        local ok=0
        for _ in $(seq 1 300); do
            if client -c 'SELECT 1' > /dev/null 2>&1; then
                ok=1
                break
            fi
            sleep 0.1
        done
        if [[ $ok != 1 ]]; then
            log "postgres did not answer in 30 s; its log:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
    fi
    client <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$USER_NAME') THEN
        CREATE ROLE $USER_NAME LOGIN CREATEDB PASSWORD '$USER_NAME';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $USER_NAME OWNER $USER_NAME'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$USER_NAME')
\gexec
EOF
    echo "$URL"
}

case ${1:-start} in
    start) start ;;
    stop)
        BINDIR=$(bindir)
        stop
        ;;
    *)
        echo "usage: $0 [start|stop]" >&2
        exit 2
        ;;
esac
