#!/bin/bash
#
# devstack plugin for fastboot: a thin dispatcher, the work is done by the
# functions of lib/fastboot.

_XTRACE_FASTBOOT_PLUGIN=$(set +o | grep xtrace)
set -o xtrace

source "$(dirname "${BASH_SOURCE[0]}")/lib/fastboot"

case "$1" in
    stack)
        case "$2" in
            install)
                echo_summary "Installing fastboot"
                install_fastboot
                ;;
            post-config)
                echo_summary "Configuring fastboot"
                configure_fastboot
                if is_service_enabled horizon; then
                    install_fastboot_dashboard
                fi
                ;;
        esac
        ;;
    unstack)
        echo_summary "Stopping fastboot"
        stop_fastboot
        ;;
    clean)
        echo_summary "Cleaning up fastboot"
        cleanup_fastboot
        ;;
esac

$_XTRACE_FASTBOOT_PLUGIN
