#!/bin/bash
#
# The system-touching calls of devstack, replaced for the offline plugin
# test (harness.sh). Each call is recorded in $FB_RECORD, one line per
# call, its arguments shell-quoted; nothing is installed, started or sent
# anywhere. File operations run for real only inside $FB_ROOT, the test's
# temporary tree: a path outside it fails the test.

# _fb_record WORD...: one shell-quoted line.
function _fb_record {
    local line
    printf -v line '%q ' "$@"
    echo "${line% }" >> "$FB_RECORD"
}

# _fb_inside_root ARG...: every absolute path among the arguments is in
# $FB_ROOT (or /dev/null).
function _fb_inside_root {
    local arg
    for arg in "$@"; do
        case "$arg" in
            /dev/null) ;;
            "$FB_ROOT"/*) ;;
            /*) return 1 ;;
        esac
    done
}

# sudo: recorded; file operations inside the tree run without privileges.
function sudo {
    _fb_record sudo "$@"
    while [[ "$1" == -* || "$1" == *=* ]]; do
        shift
    done
    case "$1" in
        sed|grep)
            # The expression may start with "/": only the file counts.
            if ! _fb_inside_root "${@: -1}"; then
                echo "stubs.sh: sudo $* touches a path outside $FB_ROOT" >&2
                exit 97
            fi
            "$@"
            ;;
        install|mkdir|rm|rmdir|tee|chown|chmod|cp|mv|touch|cat)
            if ! _fb_inside_root "$@"; then
                echo "stubs.sh: sudo $* touches a path outside $FB_ROOT" >&2
                exit 97
            fi
            "$@"
            ;;
    esac
}

# systemctl (devstack calls it as $SYSTEMCTL): enable/disable are kept as
# marker files, so is-enabled answers as systemd would.
function _fb_systemctl {
    _fb_record systemctl "$@"
    local marks=$FB_ROOT/systemd-enabled
    mkdir -p "$marks"
    case "$1" in
        enable) touch "$marks/$2" ;;
        disable) rm -f "$marks/$2" ;;
        is-enabled) [[ -f "$marks/$2" ]] ;;
    esac
}

# Packages and pip.
function install_package {
    _fb_record install_package "$@"
}
function setup_develop {
    _fb_record setup_develop "$@"
}
function pip_install {
    _fb_record pip_install "$@"
}
function pip_uninstall {
    _fb_record pip_uninstall "$@"
}

# The database server (lib/databases/mysql calls the client).
function mysql {
    _fb_record mysql "$@"
}

# libvirt's own setup (packages, daemons, groups), before the hypervisor
# plugin writes nova.conf.
function configure_libvirt {
    _fb_record configure_libvirt "$@"
}

# uWSGI sockets (tmpfiles.d) and the Apache proxy of an API.
function write_uwsgi_config {
    _fb_record write_uwsgi_config "$@"
}

function qemu-img {
    _fb_record qemu-img "$@"
}

# Keystone, Cinder and Glance through the openstack client. "show" of
# something missing fails, as the real client does, so devstack's
# get-or-create functions take their create path.
function openstack {
    _fb_record openstack "$@"
    local args=" $* "
    case "$args" in
        *" service show "*|*" volume type show "*) return 1 ;;
        *" endpoint list "*|*" role assignment list "*) return 0 ;;
        *" -c id "*|*" -c ID "*) echo "00000000-0000-4000-8000-$(printf '%012d' "$RANDOM")" ;;
    esac
}
