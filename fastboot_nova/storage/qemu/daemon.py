"""Lifecycle of a host's qemu-storage-daemon.

The daemon outlives the processes that use it (the CLI, nova-compute): it
is started daemonized and found again through its QMP socket, so a restart
of nova-compute never interrupts VM I/O.
"""

import contextlib
import logging
import os
import signal
import time

from fastboot_nova import exception
from fastboot_nova import executor
from fastboot_nova.storage.qemu import qmp as qmp_mod

LOG = logging.getLogger(__name__)


class StorageDaemon:
    """One qemu-storage-daemon, reached on ``<run_dir>/qmp.sock``."""

    def __init__(self, run_dir, binary='qemu-storage-daemon', execute=None,
                 start_timeout=30, qmp_factory=qmp_mod.QMPClient,
                 extra_args=()):
        self.run_dir = run_dir
        #: More command line arguments (an argv list), e.g. ``--trace``.
        self.extra_args = tuple(extra_args)
        self.binary = binary
        self.execute = execute or executor.execute
        self.start_timeout = start_timeout
        self.qmp_factory = qmp_factory
        self.qmp_path = os.path.join(run_dir, 'qmp.sock')
        self.pid_path = os.path.join(run_dir, 'daemon.pid')

    def qmp(self, timeout=None):
        """A connected QMP session, to use as a context manager."""
        client = self.qmp_factory(self.qmp_path,
                                  timeout=timeout or self.start_timeout)
        client.connect()
        return client

    def is_running(self):
        try:
            with contextlib.closing(self.qmp(timeout=5)):
                return True
        except exception.QMPError:
            return False

    def pid(self):
        try:
            with open(self.pid_path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        try:
            with open('/proc/%d/stat' % pid) as f:
                stat = f.read()
        except OSError:
            return None
        # /proc/PID/stat is "pid (comm) state ...". A recycled pid belongs
        # to some other program, and a zombie is already dead.
        comm = stat[stat.find('(') + 1:stat.rfind(')')]
        state = stat[stat.rfind(')') + 2:][:1]
        if not comm.startswith('qemu-storage') or state in ('Z', 'X'):
            return None
        return pid

    def start(self):
        """Start the daemon; returns once it answers on its monitor."""
        stale = self.pid()
        if stale is not None:
            # A process that holds the pid file but does not answer its
            # monitor would fight the new one over the cache files.
            raise exception.DaemonError(
                reason='process %d owns %s but does not answer on %s; '
                       'stop it first' % (stale, self.pid_path,
                                          self.qmp_path))
        LOG.info('Starting qemu-storage-daemon in %s', self.run_dir)
        self.execute(
            self.binary,
            '--chardev', 'socket,id=qmp,path=%s,server=on,wait=off' % (
                self.qmp_path),
            '--monitor', 'chardev=qmp',
            '--pidfile', self.pid_path,
            '--daemonize',
            *self.extra_args,
            timeout=self.start_timeout)
        deadline = time.monotonic() + self.start_timeout
        while not self.is_running():
            if time.monotonic() > deadline:
                raise exception.DaemonError(
                    reason='no answer on %s after %ss' % (
                        self.qmp_path, self.start_timeout))
            time.sleep(0.05)

    def stop(self, timeout=10):
        """Ask the daemon to quit; kill it if it does not."""
        pid = self.pid()
        try:
            with contextlib.closing(self.qmp(timeout=5)) as qmp:
                qmp.execute('quit')
        except exception.QMPError:
            pass
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            LOG.warning('qemu-storage-daemon %d did not quit; killing it',
                        pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_path)
