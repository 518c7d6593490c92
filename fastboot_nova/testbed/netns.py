"""Run commands inside network namespaces, and remove a testbed's leftovers.

The namespace plumbing under :class:`fastboot_nova.testbed.network.Testbed`:
the ``nsenter`` argv prefix (only the network namespace changes, not the
mount namespace), ``run``/``popen``/``execute`` wrappers that use it, the
check that the host can build a testbed at all, and the cleanup that stops
the processes left in a prefix's namespaces and deletes those namespaces
(and with them their veths and bridge).
"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time

from fastboot_nova import exception
from fastboot_nova import executor
from fastboot_nova.i18n import _

LOG = logging.getLogger(__name__)

NETNS_DIR = '/run/netns'
#: The name of the switch namespace, after the prefix: cleanup deletes it
#: last.
SWITCH = 'sw'
COMMAND_TIMEOUT = 30
KILL_GRACE = 5

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


class TestbedError(exception.FastbootException):
    message = _("Network testbed %(name)s: %(reason)s")


def netns_argv(netns):
    """The argv prefix that runs a command in network namespace ``netns``.

    Only the network namespace changes: the process keeps the root mount
    namespace (FUSE mounts, /sys) and everything else.
    """
    return ['nsenter', '--net=%s' % os.path.join(NETNS_DIR, netns)]


def _argv(netns, argv):
    if isinstance(argv, (str, bytes)):
        # A string would be one program name with spaces, or a shell
        # string in disguise: refuse both.
        raise TypeError('argv must be a list of arguments, not %r' % (argv,))
    return netns_argv(netns) + [str(a) for a in argv]


def run(netns, argv, **kwargs):
    """``subprocess.run(argv, **kwargs)`` inside ``netns``.

    Returns the CompletedProcess.
    """
    return subprocess.run(_argv(netns, argv), **kwargs)


def popen(netns, argv, **kwargs):
    """``subprocess.Popen(argv, **kwargs)`` inside ``netns``.

    nsenter execs the command after joining the namespace, so the Popen's
    pid is the command's own pid (kill/wait work as usual).
    """
    return subprocess.Popen(_argv(netns, argv), **kwargs)


def netns_execute(netns, execute=None):
    """An ``execute`` that runs its commands inside ``netns``.

    It has the signature of :func:`fastboot_nova.executor.execute`, so it
    can be handed to anything that takes ``execute=``; e.g. a QemuEngine
    built with it starts its qemu-storage-daemon, and runs qemu-img, in
    that host's namespace.
    """
    base = execute or executor.execute
    prefix = netns_argv(netns)

    def ns_execute(*cmd, check_exit_code=True, timeout=None):
        try:
            return base(*(prefix + list(cmd)),
                        check_exit_code=check_exit_code, timeout=timeout)
        except exception.CommandFailed as e:
            # Name the real command, not "nsenter --net=...".
            raise exception.CommandFailed(
                cmd='%s (in network namespace %s)' % (
                    ' '.join(str(c) for c in cmd[:2]), netns),
                code=e.kwargs.get('code'),
                stderr=e.kwargs.get('stderr')) from e

    ns_execute.netns = netns
    return ns_execute


def _effective_caps():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('CapEff:'):
                return int(line.split()[1], 16)
    return 0


def check_support(name='', need_tc=False):
    """Check what a testbed needs, without running anything.

    :raises TestbedError: saying what is missing.
    """
    caps = _effective_caps()
    missing = [cap for bit, cap in ((CAP_SYS_ADMIN, 'CAP_SYS_ADMIN'),
                                    (CAP_NET_ADMIN, 'CAP_NET_ADMIN'))
               if not caps & (1 << bit)]
    if missing:
        raise TestbedError(
            name=name,
            reason=_('needs root: CAP_SYS_ADMIN to create network '
                     'namespaces and CAP_NET_ADMIN to configure them '
                     '(missing %s); run it as root') % ', '.join(missing))
    if not os.path.exists('/proc/self/ns/net'):
        raise TestbedError(
            name=name, reason=_('this kernel has no network namespaces '
                                '(CONFIG_NET_NS)'))
    tools = [('ip', 'iproute2'), ('nsenter', 'util-linux'),
             ('sysctl', 'procps')]
    if need_tc:
        tools.append(('tc', 'iproute2'))
    for tool, package in tools:
        if shutil.which(tool) is None:
            raise TestbedError(
                name=name, reason=_('%(tool)s is not installed (package '
                                    '%(package)s)') % {'tool': tool,
                                                       'package': package})


def _list_namespaces(execute, name=''):
    """Names from ``ip netns list``; a clear error if ip has no netns."""
    try:
        out, _err = execute('ip', 'netns', 'list', timeout=COMMAND_TIMEOUT)
    except exception.CommandFailed as e:
        raise TestbedError(
            name=name, reason=_('"ip netns" does not work here (iproute2 '
                                'without netns support, or no network '
                                'namespaces in the kernel): %s') % e) from e
    # Lines look like "NAME" or "NAME (id: 3)".
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_all(pids, grace=KILL_GRACE):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    for pid in alive:
        LOG.warning('Process %d did not stop on SIGTERM; killing it', pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    # A zombie is dead. It is not reaped here: if it is our child, its
    # Popen object owns its exit status.
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rpartition(')')[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ('Z', 'X')


def _in_netns(pid, netns):
    """Whether process ``pid`` is still in namespace ``netns``.

    Checked right before killing, so that a pid recycled since ``ip netns
    pids`` listed it is never signalled.
    """
    try:
        mine = os.stat(os.path.join(NETNS_DIR, netns))
        theirs = os.stat('/proc/%d/ns/net' % pid)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def cleanup_prefix(prefix, execute=None, namespaces=None):
    """Remove every namespace named ``<prefix>-*``, with what is in it.

    Processes still running in those namespaces are stopped first
    (SIGTERM, then SIGKILL): a daemonized qemu-storage-daemon would keep
    its namespace, and through it the veth, alive after ``ip netns del``.
    Namespaces go in the reverse order of creation, the switch last, so
    an interrupted cleanup leaves the remaining nodes still joined by
    their bridge. Deleting a namespace deletes its devices, and deleting
    one end of a veth deletes the other, so the veths and the bridge go
    with the namespaces.

    :param namespaces: the ``ip netns list`` names, if already known.
    :returns: the names of the namespaces removed.
    :raises TestbedError: if some could not be removed.
    """
    execute = execute or executor.execute
    if namespaces is None:
        namespaces = _list_namespaces(execute, prefix)
    switch = '%s-%s' % (prefix, SWITCH)
    mine = sorted(ns for ns in namespaces
                  if ns.startswith(prefix + '-') and ns != switch)
    if switch in namespaces:
        mine.append(switch)
    errors = []
    pids = []
    for ns in mine:
        try:
            out, _err = execute('ip', 'netns', 'pids', ns,
                                timeout=COMMAND_TIMEOUT)
            pids.extend(int(p) for p in out.split()
                        if _in_netns(int(p), ns))
        except (exception.CommandFailed, ValueError) as e:
            errors.append('list processes of %s: %s' % (ns, e))
    if pids:
        LOG.info('Stopping processes %s left in testbed %s', pids, prefix)
        _kill_all(pids)
    for ns in mine:
        try:
            execute('ip', 'netns', 'delete', ns, timeout=COMMAND_TIMEOUT)
        except exception.CommandFailed as e:
            errors.append('delete %s: %s' % (ns, e))
    if errors:
        raise TestbedError(name=prefix, reason=_('cleanup failed: %s') %
                           '; '.join(errors))
    return mine
