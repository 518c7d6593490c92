#!/bin/bash
# Install what fastboot needs on a Debian machine, as root.
#
#   bash tools/install-deps.sh [PROFILE...]      (default profile: test)
#
# 1. makes sure python3 (>= 3.11) can create virtualenvs, installing
#    python3, python3-venv and python3-pip if it cannot;
# 2. creates .tox-bootstrap/ in the repository, a virtualenv holding tox,
#    tox-uv (tox then builds its environments with uv, several times
#    faster than virtualenv + pip), bindep and python-subunit (kept between
#    runs, gitignored);
# 3. installs, with apt-get, the packages of bindep.txt for PROFILE that are
#    missing (profiles: test, demo, compile; see bindep.txt).
#
# Safe to run again: it only installs what is missing. Needs no terminal.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BOOTSTRAP=${FASTBOOT_BOOTSTRAP_VENV:-$ROOT/.tox-bootstrap}
# tox-uv makes tox create its environments with uv and install into them
# with uv; ministack/install.py uses the uv it brings too.
BOOTSTRAP_PACKAGES=(tox 'tox-uv>=1.20' bindep python-subunit)
# uWSGI (test-requirements.txt) is only an sdist on PyPI: every tox
# environment would compile it, a minute of CPU each. pip keeps the wheels
# it builds; uv rebuilds when it cannot revalidate its cached sdist (a
# proxy that strips caching headers, as on our CI machine). So it is built
# once here, by the bootstrap's Python (the one tox's environments are
# made from: uWSGI embeds libpython), and tools/run-tests.sh points uv at
# this directory (UV_FIND_LINKS).
WHEELS=$BOOTSTRAP/wheels
export DEBIAN_FRONTEND=noninteractive

profiles=("$@")
if [ ${#profiles[@]} -eq 0 ]; then
    profiles=(test)
fi

log() {
    echo "install-deps: $*" >&2
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo > /dev/null; then
        sudo -n "$@"
    else
        log "run me as root: cannot run $*"
        return 1
    fi
}

apt_updated=0

apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -q
        apt_updated=1
    fi
}

apt_install() {
    local lists
    if ! command -v apt-get > /dev/null; then
        log "no apt-get here: install these by hand: $*"
        return 1
    fi
    # Fresh machines (and containers) often have no package lists yet.
    lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' \
        -print -quit 2> /dev/null || true)
    if [ -z "$lists" ]; then
        apt_update
    fi
    log "apt-get install $*"
    if ! as_root apt-get install -y -q --no-install-recommends "$@"; then
        # Stale lists point at files the mirror no longer has.
        if [ "$apt_updated" -eq 1 ]; then
            return 1
        fi
        apt_update
        as_root apt-get install -y -q --no-install-recommends "$@"
    fi
}

python_ok() {
    command -v python3 > /dev/null &&
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'
}

make_bootstrap() {
    rm -rf "$BOOTSTRAP"
    python3 -m venv "$BOOTSTRAP"
}

if ! python_ok; then
    apt_install python3 python3-venv python3-pip
    if ! python_ok; then
        log "python3 is $(python3 --version 2>&1); fastboot needs >= 3.11"
        exit 1
    fi
fi

bootstrap_ok() {
    local stamp="$BOOTSTRAP/.fastboot-bootstrap"
    [ -x "$BOOTSTRAP/bin/tox" ] && [ -x "$BOOTSTRAP/bin/bindep" ] &&
        [ "$(cat "$stamp" 2> /dev/null)" = "${BOOTSTRAP_PACKAGES[*]}" ]
}

if ! bootstrap_ok; then
    log "creating $BOOTSTRAP"
    if ! make_bootstrap; then
        # Debian's python3 needs python3-venv for ensurepip.
        apt_install python3-venv python3-pip
        make_bootstrap
    fi
    "$BOOTSTRAP/bin/python" -m pip install -q --upgrade pip
    "$BOOTSTRAP/bin/python" -m pip install -q "${BOOTSTRAP_PACKAGES[@]}"
    echo "${BOOTSTRAP_PACKAGES[*]}" > "$BOOTSTRAP/.fastboot-bootstrap"
fi

missing_packages() {
    # bindep -b prints the missing packages and exits 1 if there are any.
    local out rc=0
    out=$("$BOOTSTRAP/bin/bindep" -b "${profiles[@]}") || rc=$?
    if [ "$rc" -ne 0 ] && [ -z "$out" ]; then
        log "bindep failed (exit $rc)"
        return 1
    fi
    printf '%s' "$out"
}

missing=$(missing_packages)
if [ -n "$missing" ]; then
    mapfile -t packages <<< "$missing"
    apt_install "${packages[@]}"
    missing=$(missing_packages)
    if [ -n "$missing" ]; then
        log "still missing after apt-get: $missing"
        exit 1
    fi
fi

# After bindep: compiling uWSGI needs gcc and python3-dev.
uwsgi_wheel=$(find "$WHEELS" -maxdepth 1 -iname 'uwsgi-*.whl' \
    2> /dev/null || true)
if [ -z "$uwsgi_wheel" ]; then
    log "building the uWSGI wheel into $WHEELS"
    mkdir -p "$WHEELS"
    if ! "$BOOTSTRAP/bin/python" -m pip wheel -q --no-deps --no-cache-dir \
        --no-binary uWSGI -w "$WHEELS" 'uWSGI>=2.0.21'; then
        # Not fatal: each environment then compiles it itself.
        log "could not build uWSGI's wheel; tox environments will"
    fi
fi
log "ready (profiles: ${profiles[*]}; tox: $BOOTSTRAP/bin/tox)"
