#!/bin/bash
#
# devstack plugin for fastboot: a thin dispatcher over the phases of
# stack.sh, unstack.sh and clean.sh; the work is done by the functions of
# lib/fastboot. Every phase only touches the parts whose service is
# enabled (devstack/settings lists them).

_XTRACE_FASTBOOT_PLUGIN=$(set +o | grep xtrace)
set -o xtrace

source "$(dirname "${BASH_SOURCE[0]}")/lib/fastboot"

if is_service_enabled fastboot-compute fastboot-coordinator \
        fastboot-runner fastboot-listener fastboot-api-filter; then
    case "$1" in
        stack)
            case "$2" in
                pre-install)
                    echo_summary "Checking fastboot settings"
                    check_fastboot_settings
                    install_fastboot_packages
                    ;;
                install)
                    echo_summary "Installing fastboot"
                    install_fastboot
                    ;;
                post-config)
                    echo_summary "Configuring fastboot"
                    configure_fastboot
                    init_fastboot
                    ;;
                extra)
                    echo_summary "Starting fastboot"
                    start_fastboot
                    create_fastboot_volume_type
                    check_fastboot_compute
                    ;;
                test-config)
                    if [[ "$(trueorfalse False FASTBOOT_SAMPLE_ORIGIN)" == "True" ]]; then
                        echo_summary "Creating the fastboot sample origin"
                        create_fastboot_sample
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
fi

$_XTRACE_FASTBOOT_PLUGIN
