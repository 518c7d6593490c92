"""Recording fakes of nbd-server, nbd-client and dm-multipath messages."""

import os
import re
import signal

import fixtures

from fastboot_nova.privsep import dm as dm_priv
from fastboot_nova.privsep import nbd as nbd_priv
from fastboot_nova.privsep import utils as priv_utils
from tests.unit.dm import fakes

NBD_MAJOR = 43


def majmin(device):
    """``/dev/nbdN`` as ``dmsetup table`` shows it."""
    return '%d:%d' % (NBD_MAJOR, 32 * int(device[len('/dev/nbd'):]))


def dev_name(mm):
    major, minor = (int(x) for x in mm.split(':'))
    assert major == NBD_MAJOR, mm
    return '/dev/nbd%d' % (minor // 32)


class FakeNbdKernel(fakes.FakeKernel):
    """FakeKernel plus nbd devices, nbd-server processes, mpath status."""

    def __init__(self, host_devices=None, nbd_devices=4, export_sectors=0):
        super().__init__(host_devices)
        #: ``/dev/nbdN`` -> ``(address, port, export)`` while connected.
        self.nbd = {'/dev/nbd%d' % i: None for i in range(nbd_devices)}
        self.export_sectors = export_sectors
        #: Running servers: name -> pid; ``servers_argv`` every spawn.
        self.servers = {}
        self.listening = set()
        self.spawns = []
        self.spawn_code = 0
        self.failed_paths = set()
        self._pid = 1000
        #: Server pids that ignore SIGTERM (stuck on a device), and
        #: every ``(pid, signal)`` sent.
        self.ignore_sigterm = set()
        self.signals = []

    # -- nbd ------------------------------------------------------------------

    def nbd_state(self):
        return {d: c is not None for d, c in self.nbd.items()}

    def is_block_device(self, path):
        return path in self.nbd or super().is_block_device(path)

    def device_sectors(self, path):
        if path in self.nbd:
            return self.export_sectors if self.nbd[path] else 0
        return super().device_sectors(path)

    def spawn(self, argv, log_path):
        self.spawns.append(list(argv))
        if self.spawn_code:
            with open(log_path, 'a') as f:
                f.write('Could not open exported file\n')
            return self.spawn_code
        conf, pidfile = argv[2], argv[4]
        with open(conf) as f:
            text = f.read()
        addr = re.search(r'^listenaddr = (\S+)$', text, re.M).group(1)
        port = int(re.search(r'^port = (\d+)$', text, re.M).group(1))
        name = os.path.basename(pidfile)[:-len('.pid')]
        self._pid += 1
        self.servers[name] = self._pid
        self.listening.add((addr, port))
        with open(pidfile, 'w') as f:
            f.write('%d\n' % self._pid)
        return 0

    def server_alive(self, pid):
        return pid in self.servers.values()

    def is_listening(self, address, port):
        return (address, port) in self.listening

    def server_children(self, pid):
        return []

    def kill(self, pid, sig):
        self.signals.append((pid, sig))
        if sig == signal.SIGTERM and pid in self.ignore_sigterm:
            return
        for name, p in list(self.servers.items()):
            if p == pid:
                del self.servers[name]

    def run(self, argv, stdin=None):
        if argv[0] == 'nbd-client':
            self.calls.append((' '.join(argv), stdin))
            for prefix, (code, err) in self.fail.items():
                if ' '.join(argv).startswith(prefix):
                    return code, '', err
            if argv[1] == '-d':
                self.nbd[argv[2]] = None
                return 0, '', ''
            self.nbd[argv[3]] = (argv[1], int(argv[2]), argv[5])
            return 0, '', ''
        if argv[:2] == ['dmsetup', 'message']:
            self.calls.append((' '.join(argv), stdin))
            dev = argv[-1]
            if argv[-2] == 'fail_path':
                self.failed_paths.add(dev)
            else:
                self.failed_paths.discard(dev)
            return 0, '', ''
        if argv[:2] == ['dmsetup', 'table'] and 'multipath' in \
                self.tables.get(argv[-1], ''):
            self.calls.append((' '.join(argv), stdin))
            return 0, re.sub(r'/dev/nbd[0-9]+', lambda m: majmin(m.group(0)),
                             self.tables[argv[-1]]), ''
        if argv[:2] == ['dmsetup', 'status'] and 'multipath' in \
                self.tables.get(argv[-1], ''):
            self.calls.append((' '.join(argv), stdin))
            f = self.tables[argv[-1]].split()
            paths = f[11:11 + 2 * int(f[9]):2]
            return 0, '%s %s multipath 2 0 0 0 1 1 A 0 %d 0 %s\n' % (
                f[0], f[1], len(paths), ' '.join(
                    '%s %s 0' % (majmin(p),
                                 'F' if p in self.failed_paths else 'A')
                    for p in paths)), ''
        return super().run(argv, stdin)


class NbdFixture(fixtures.Fixture):
    """PrivsepFixture over a FakeNbdKernel, run files in a temp dir."""

    def __init__(self, host_devices=None, **kwargs):
        super().__init__()
        self.host_devices = host_devices
        self.kwargs = kwargs

    def _setUp(self):
        priv = self.useFixture(fakes.PrivsepFixture())
        self.kernel = k = FakeNbdKernel(self.host_devices, **self.kwargs)
        priv.kernel = k
        self.run_dir = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'run')
        for attr, fake in (('_runner', k.run),
                           ('_is_block_device', k.is_block_device),
                           ('device_sectors', k.device_sectors),
                           ('_device_info', k.device_info)):
            self.useFixture(fixtures.MockPatchObject(priv_utils, attr, fake))
        self.useFixture(fixtures.MockPatchObject(dm_priv, '_write_zeros',
                                                 k.write_zeros))
        for attr, fake in (('_spawn', k.spawn), ('_nbd_state', k.nbd_state),
                           ('_server_alive', k.server_alive),
                           ('_server_children', k.server_children),
                           ('STOP_WAIT', 0.2),
                           ('_listening', k.is_listening),
                           ('RUN_DIR', self.run_dir)):
            self.useFixture(fixtures.MockPatchObject(nbd_priv, attr, fake))
        self.useFixture(fixtures.MockPatchObject(nbd_priv.os, 'kill',
                                                 k.kill))
