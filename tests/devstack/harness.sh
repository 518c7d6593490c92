#!/bin/bash
#
# Runs devstack phases with the fastboot plugin, offline, against
# devstack's real function library:
#
#   harness.sh ROOT STEP...
#
# ROOT holds a copy of devstack's tree (ROOT/devstack, with local.conf and
# .localrc.auto written by the test) and everything the steps write. A
# STEP is one of stack.sh's plugin phases (pre-install, install,
# post-config, extra, test-config), unstack or clean (run_phase of
# devstack's functions-common), or one of devstack's own steps around
# them: nova-conf (nova.conf from devstack's create_nova_conf, Nova's
# api-paste.ini, and the hypervisor plugin's configure_nova_hypervisor) and start-nova-compute (devstack's start_nova_compute, which
# makes nova-cpu.conf from nova.conf), or snapshot:NAME (a copy of the
# configuration in ROOT/snapshots/NAME). Only the calls of stubs.sh are
# replaced.
#
# The globals set here are read by devstack's functions:
# shellcheck disable=SC2034

set -o errexit

FB_ROOT=$1
shift
FB_RECORD=$FB_ROOT/commands.log
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$FB_ROOT/devstack

# stack.sh's order: stackrc (functions, local.conf's localrc), the
# database and RPC libraries, plugin defaults, the project libraries,
# plugin settings.
source "$TOP_DIR/stackrc"
# stackrc's PS4 runs $(short_source) for every traced line: a fork per
# line of xtrace, which plugin.sh turns on. A plain prefix is as good
# here and several times faster.
PS4='+ '
source "$TOP_DIR/lib/database"
source "$TOP_DIR/lib/rpc_backend"
run_phase override_defaults
source "$TOP_DIR/lib/apache"
source "$TOP_DIR/lib/tls"
source "$TOP_DIR/lib/horizon"
source "$TOP_DIR/lib/keystone"
source "$TOP_DIR/lib/glance"
source "$TOP_DIR/lib/nova"
source "$TOP_DIR/lib/placement"
source "$TOP_DIR/lib/cinder"
run_phase source
# DATABASE_PASSWORD comes from local.conf (stack.sh would ask for it).
if initialize_database_backends; then
    define_database_baseurl
fi

# After the libraries, which define some of the functions replaced.
source "$HERE/stubs.sh"
SYSTEMCTL=_fb_systemctl
SYSTEMD_DIR=$FB_ROOT/etc/systemd/system

# The configuration directories devstack hard-codes under /etc.
NOVA_CONF_DIR=$FB_ROOT/etc/nova
NOVA_CONF=$NOVA_CONF_DIR/nova.conf
NOVA_CPU_CONF=$NOVA_CONF_DIR/nova-cpu.conf
NOVA_API_PASTE_INI=$NOVA_CONF_DIR/api-paste.ini
NOVA_UWSGI_CONF=$NOVA_CONF_DIR/nova-api-uwsgi.ini
NOVA_METADATA_UWSGI_CONF=$NOVA_CONF_DIR/nova-metadata-uwsgi.ini
CINDER_CONF=$FB_ROOT/etc/cinder/cinder.conf
PLACEMENT_CONF=$FB_ROOT/etc/placement/placement.conf

# nova.conf as configure_nova leaves it: devstack's create_nova_conf
# (its apache/uwsgi part recorded), Nova's api-paste.ini, and the
# hypervisor plugin's configure_nova_hypervisor.
function _fb_nova_conf {
    mkdir -p "$NOVA_CONF_DIR"
    create_nova_conf
    cp "$FB_NOVA_API_PASTE" "$NOVA_API_PASTE_INI"
    if is_service_enabled n-cpu && [[ -r $NOVA_PLUGINS/hypervisor-$VIRT_DRIVER ]]; then
        configure_nova_hypervisor
    fi
}

# snapshot:NAME keeps a copy of the configuration (ROOT/etc) and of
# Horizon's enabled files and local settings as they are between two
# steps.
function _fb_snapshot {
    local dir=$FB_ROOT/snapshots/$1
    mkdir -p "$dir" "$FB_ROOT/etc"
    cp -a "$FB_ROOT/etc" "$dir/etc"
    cp -a "$HORIZON_DIR/openstack_dashboard/local/enabled" "$dir/enabled"
    if [[ -d "$HORIZON_DIR/openstack_dashboard/local/local_settings.d" ]]; then
        cp -a "$HORIZON_DIR/openstack_dashboard/local/local_settings.d" \
            "$dir/local_settings.d"
    fi
}

for step in "$@"; do
    echo "harness: $step $SECONDS"
    _fb_record "#" "$step"
    case "$step" in
        nova-conf) _fb_nova_conf ;;
        start-nova-compute) start_nova_compute ;;
        snapshot:*) _fb_snapshot "${step#snapshot:}" ;;
        unstack|clean) run_phase "$step" ;;
        *) run_phase stack "$step" ;;
    esac
done
