#!/bin/bash
# See fastboot work on this machine, as root on Debian:
#
#   bash tools/run-demo.sh [fastboot demo OPTIONS...]    e.g. --vms 4
#   bash tools/run-demo.sh --openstack [--vms N] [--report FILE] [--stock]
#
# Installs what the demo needs (QEMU, the guest build tools, tox), then
# runs `fastboot demo` in its tox environment. The guest it builds is kept
# in ~/.cache/fastboot for the next run.
#
# With --openstack (the first argument) the same guests boot through a
# real OpenStack on this machine instead: `python3 -m ministack demo`
# brings the ministack up (ministack/README.rst), boots N servers from
# one volume snapshot through Nova, prints the table, writes the report,
# and takes the ministack down again.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOX=${FASTBOOT_BOOTSTRAP_VENV:-.tox-bootstrap}/bin/tox

if ! git rev-parse --git-dir > /dev/null 2>&1; then
    export PBR_VERSION=${PBR_VERSION:-0.0.0}
fi

if [ "${1:-}" = --openstack ]; then
    shift
    bash tools/install-deps.sh demo ministack
    exec python3 -m ministack demo "$@"
fi

bash tools/install-deps.sh demo
exec "$TOX" -e demo -- "$@"
