#!/bin/bash
# Run fastboot's whole test suite on a Debian machine, as root:
#
#   bash tools/run-tests.sh [TOX ARGS...]
#
# Installs what the tests need (tools/install-deps.sh; the ministack
# profile too when ministack is in the list), runs the tox
# environments of DEFAULT_ENVS below (bench-smoke runs every benchmark
# at its --quick size) one after
# the other (FASTBOOT_TEST_ENVS overrides the list), and ends with one
# line "N passed, N failed, N skipped" that adds up the stestr totals of
# every environment. The exit code is tox's: non-zero if any environment
# failed, pep8 included.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# functional-services runs the tests of functional-mysql, -postgresql,
# -rabbitmq, -redis and -ceph in one virtualenv (one build instead of five).
# ministack brings up a whole OpenStack on this machine and runs its
# scenario tests (about 25 min; ministack/README.rst).
DEFAULT_ENVS=pep8,py3,functional,functional-services,functional-nova
DEFAULT_ENVS+=,integration,kernel,bench-smoke,sim,devstack,docs,dashboard
DEFAULT_ENVS+=,ministack
ENVS=${FASTBOOT_TEST_ENVS:-$DEFAULT_ENVS}
TOX=${FASTBOOT_BOOTSTRAP_VENV:-.tox-bootstrap}/bin/tox

# pbr takes the version from git; a tree without git history needs it set.
if ! git rev-parse --git-dir > /dev/null 2>&1; then
    export PBR_VERSION=${PBR_VERSION:-0.0.0}
fi

profiles=(test)
# tox -e ministack runs a real OpenStack (bindep profile ministack).
if [[ ",$ENVS," == *,ministack,* ]]; then
    profiles+=(ministack)
fi
bash tools/install-deps.sh "${profiles[@]}"

# The wheels install-deps.sh built (uWSGI), for tox-uv's uv; pip ignores
# UV_*. tox passes UV_* to uv by default.
wheels=$(realpath "${FASTBOOT_BOOTSTRAP_VENV:-.tox-bootstrap}")/wheels
if [ -z "${UV_FIND_LINKS:-}" ] && [ -d "$wheels" ]; then
    export UV_FIND_LINKS=$wheels
fi

log=$(mktemp "${TMPDIR:-/tmp}/fastboot-tests.XXXXXX")
trap 'rm -f "$log"' EXIT

rc=0
"$TOX" -e "$ENVS" "$@" < /dev/null 2>&1 | tee "$log" || rc=$?

# stestr ends each run with a "Totals" block: " - Passed: N" etc.;
# Django's runner (tox -e dashboard's unit tests) with "Ran N tests in"
# then "OK [(skipped=N)]" or "FAILED (failures=N, errors=N[, ...])".
summary=$(awk '
    /^Ran [0-9]+ tests? in / { ran = $2 }
    /^OK/ && ran {
        s = 0
        if (match($0, /skipped=[0-9]+/))
            s = substr($0, RSTART + 8, RLENGTH - 8)
        passed += ran - s; skipped += s; ran = 0
    }
    /^FAILED \(/ && ran {
        f = 0
        n = split($0, parts, /[(), ]+/)
        for (i = 1; i <= n; i++)
            if (parts[i] ~ /^(failures|errors)=[0-9]+$/) {
                sub(/.*=/, "", parts[i]); f += parts[i]
            }
        failed += f; passed += ran - f; ran = 0
    }
    /^ - Passed: [0-9]+$/ { passed += $3 }
    /^ - Failed: [0-9]+$/ { failed += $3 }
    /^ - Unexpected Success: [0-9]+$/ { failed += $4 }
    /^ - Skipped: [0-9]+$/ { skipped += $3 }
    END { printf "%d passed, %d failed, %d skipped", passed, failed, skipped }
' "$log")
if [ "$rc" -ne 0 ]; then
    # CI shows only the tail of the log: name what failed there.
    failures=$(grep -E '\.\.\. FAILED|^(FAIL|ERROR): ' "$log" \
        | sed -E 's/ \[[0-9.]+s\]//; s/^/  /' | sort -u | head -40 || true)
    if [ -n "$failures" ]; then
        echo "run-tests: what failed:"
        echo "$failures"
    fi
    echo "run-tests: tox -e $ENVS failed (exit $rc); see above"
fi
echo "$summary"
exit "$rc"
