#!/bin/bash
#
# The check of the fastboot devstack jobs (.zuul.yaml), run on the
# controller after stack.sh as the stack user:
#
#   gate/devstack/boot-batch.sh DEVSTACK_DIR COUNT
#
# Makes an origin volume from devstack's cirros image and a snapshot of
# it, boots COUNT servers from the snapshot through one boot batch
# (POST /v1/batches on the coordinator, fastboot-runner does the rest)
# and checks that the batch ends ACTIVE with COUNT ACTIVE servers. Exits
# non-zero, saying why, otherwise.

set -o errexit
set -o nounset
set -o pipefail

DEVSTACK_DIR=${1:?usage: boot-batch.sh DEVSTACK_DIR COUNT}
COUNT=${2:?usage: boot-batch.sh DEVSTACK_DIR COUNT}
if [[ ! "$COUNT" =~ ^[1-9][0-9]*$ ]]; then
    echo "boot-batch: COUNT must be a positive integer, not '$COUNT'" >&2
    exit 2
fi
NAME=fastboot-check
TIMEOUT=${FASTBOOT_CHECK_TIMEOUT:-1800}

# shellcheck disable=SC1091
source "$DEVSTACK_DIR/openrc" admin admin > /dev/null

# wait_status KIND ID STATUS: until the volume or snapshot has STATUS.
function wait_status {
    local kind=$1 id=$2 want=$3 status i
    for i in $(seq 1 120); do
        status=$(openstack "$kind" show -f value -c status "$id")
        if [[ "$status" == "$want" ]]; then
            return 0
        fi
        if [[ "$status" == error* ]]; then
            echo "boot-batch: $kind $id is $status" >&2
            return 1
        fi
        sleep 5
    done
    echo "boot-batch: $kind $id still $status after $i tries" >&2
    return 1
}

image=$(openstack image list --status active -f value -c Name | \
    grep -m 1 cirros)
volume=$(openstack volume create --image "$image" --size 1 \
    -f value -c id "$NAME-origin")
wait_status volume "$volume" available
snapshot=$(openstack volume snapshot create --volume "$volume" \
    -f value -c id "$NAME-snapshot")
wait_status "volume snapshot" "$snapshot" available

batch=$(openstack fastboot batch create --snapshot "$snapshot" \
    --count "$COUNT" --flavor m1.tiny --network none --name "$NAME" \
    --wait --wait-timeout "$TIMEOUT" -f value -c id)
state=$(openstack fastboot batch show -f value -c state "$batch")
openstack fastboot batch timeline "$batch" || true

active=$(openstack server list --name "^$NAME" --status ACTIVE \
    -f value -c ID | wc -l)
echo "boot-batch: batch $batch is $state, $active of $COUNT servers ACTIVE"
if [[ "$state" != "ACTIVE" || "$active" -ne "$COUNT" ]]; then
    openstack fastboot batch show "$batch" || true
    exit 1
fi
