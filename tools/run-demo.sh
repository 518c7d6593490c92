#!/bin/bash
# See fastboot work on this machine, as root on Debian:
#
#   bash tools/run-demo.sh [fastboot demo OPTIONS...]    e.g. --vms 4
#
# Installs what the demo needs (QEMU, the guest build tools, tox), then
# runs `fastboot demo` in its tox environment. The guest it builds is kept
# in ~/.cache/fastboot for the next run.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOX=${FASTBOOT_BOOTSTRAP_VENV:-.tox-bootstrap}/bin/tox

if ! git rev-parse --git-dir > /dev/null 2>&1; then
    export PBR_VERSION=${PBR_VERSION:-0.0.0}
fi

bash tools/install-deps.sh demo
exec "$TOX" -e demo -- "$@"
