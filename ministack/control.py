"""Stop and start one service of a running ministack, by name.

For the fault scenarios (a nova-compute killed mid-boot, a coordinator
replica down) and for picking up a changed config: ``python3 -m
ministack stop|start SERVICE`` (``stop --kill`` sends SIGKILL at once,
what a crash looks like). Only the names ``status`` lists are accepted,
and only the process ministack started (by pid file) is signalled.
"""

import os
import signal

from ministack import layout as layout_mod
from ministack import proc
from ministack.services import cinder
from ministack.services import coordinator
from ministack.services import libvirt
from ministack.services import nova


def _starters():
    """Name -> how to start that one service again (configs rewritten)."""
    out = {}
    for host in layout_mod.COMPUTES:
        out['nova-compute-' + host] = _nova_computes
        out['libvirtd-' + host] = _libvirtds
    for replica in coordinator.REPLICAS:
        out['fastboot-' + replica] = (
            lambda stack, r=replica: coordinator.start_replica(stack, r))
    for name in ('cinder-scheduler', 'cinder-volume'):
        out[name] = _cinder_daemons
    # Starts whichever of the two is not running.
    for name in ('fastboot-runner', 'fastboot-notification-listener'):
        out[name] = coordinator.up_workers
    return out


def _nova_computes(stack):
    nova.configure(stack)
    nova.up_computes(stack)


def _libvirtds(stack):
    libvirt.up(stack)
    libvirt.wait(stack)
    libvirt.define_rbd_secrets(stack)


def _cinder_daemons(stack):
    cinder.configure(stack)
    cinder.start_daemons(stack)


def startable():
    return sorted(_starters())


def _check(name, names):
    if name not in names:
        raise ValueError('unknown service %r (one of: %s)' % (
            name, ', '.join(names)))


def stop(stack, name, kill=False):
    """Stop service ``name``; True if it was running.

    ``kill``: SIGKILL to the process group at once (a crash: nothing
    cleans up), else SIGTERM and SIGKILL after 30 s.
    """
    from ministack import orchestrate
    _check(name, orchestrate.all_names())
    pid = proc.running(stack.layout, name)
    if kill and pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # After SIGKILL the process may be a zombie already, which
    # proc.stop counts as stopped: whether it ran is asked first.
    stopped = proc.stop(stack.layout, name)
    return bool(pid) or stopped


def start(stack, name):
    """Start service ``name`` again unless it runs; its pid."""
    starters = _starters()
    _check(name, sorted(starters))
    starters[name](stack)
    return proc.running(stack.layout, name)
