"""A recording fake of dmsetup and losetup for the dm backend tests."""

import json
import os
import re
import tempfile

import fixtures
from oslo_privsep import priv_context

import fastboot_nova.privsep
from fastboot_nova.privsep import dm as dm_priv
from fastboot_nova.privsep import utils as priv_utils


class FakeKernel:
    """Device-mapper and loop devices in memory, driven by argv lists.

    ``calls`` records every command as ``(' '.join(argv), stdin)``;
    ``fail`` maps a command prefix to ``(code, stderr)`` to make it fail.
    """

    def __init__(self, host_devices=None):
        #: Plain block devices of the host: path -> sectors.
        self.host_devices = dict(host_devices or {})
        self.tables = {}
        self.minors = {}
        self.loops = {}
        #: Sectors each loop device sees: its file's size when attached
        #: or at the last ``--set-capacity``, as in the kernel.
        self.loop_sectors = {}
        #: Tables loaded by ``reload``, swapped in by ``resume``.
        self.inactive = {}
        #: Data blocks used in each thin-pool: pool -> blocks.
        self.pool_used = {}
        self.open_counts = {}
        self.calls = []
        self.wipes = []
        self.fail = {}
        self._next_minor = 0
        #: Loaded device-mapper targets, and modules modprobe can load.
        self.targets = {'linear', 'striped', 'error', 'snapshot',
                        'snapshot-origin', 'cache', 'thin-pool', 'thin'}
        self.smq = True
        self.modules = {}
        #: Modules installed but not loaded (the kernel loads them).
        self.on_disk = set()
        #: Thin volume ids in each pool's metadata: pool -> set.
        self.thin_ids = {}
        #: Host devices that are (or have a partition) mounted.
        self.mounted = set()
        #: dm uuid of each device-mapper name (another service's LVM
        #: volume: 'LVM-...'); fastboot sets none.
        self.dm_uuids = {}

    # -- what the fixture patches in ---------------------------------------

    def is_block_device(self, path):
        if path in self.host_devices or path in self.loops:
            return True
        return path.startswith('/dev/mapper/') and \
            path[len('/dev/mapper/'):] in self.tables

    def device_sectors(self, path):
        if path in self.host_devices:
            return self.host_devices[path]
        if path in self.loops:
            return self.loop_sectors[path]
        name = path[len('/dev/mapper/'):]
        return sum(int(line.split()[1])
                   for line in self.tables[name].splitlines())

    def device_info(self, path):
        if path.startswith('/dev/mapper/'):
            name = path[len('/dev/mapper/'):]
            return priv_utils.DeviceInfo(dm_name=name,
                                         dm_uuid=self.dm_uuids.get(name, ''))
        holders = tuple(sorted(n for n, t in self.tables.items()
                               if path in t.split()))
        return priv_utils.DeviceInfo(holders=holders,
                                     mounted=path in self.mounted)

    def write_zeros(self, path, length):
        self.wipes.append((path, length))
        self.calls.append(('wipe %s %d' % (path, length), None))

    def run(self, argv, stdin=None):
        cmd = ' '.join(argv)
        self.calls.append((cmd, stdin))
        for prefix, (code, err) in self.fail.items():
            if cmd.startswith(prefix):
                return code, '', err
        if argv[0] == 'dmsetup':
            return self._dmsetup(argv[1:], stdin)
        if argv[0] == 'losetup':
            return self._losetup(argv[1:])
        if argv[0] == 'modprobe':
            loads = self.modules.get(argv[-1])
            if loads is None:
                return 1, '', ''
            self.targets.update(t for t in loads if t != 'smq')
            self.smq = self.smq or 'smq' in loads
            return 0, '', ''
        return 127, '', '%s: executable not found' % argv[0]

    def smq_available(self):
        return self.smq

    def module_on_disk(self, module):
        return module in self.on_disk

    # -- commands ------------------------------------------------------------

    def _dmsetup(self, args, stdin):
        verb = args[0]
        if verb == 'message':
            return self._message(args[1], args[3:])
        name = args[-1]
        if verb == 'targets':
            return 0, ''.join('%-16s v1.0.0\n' % t
                              for t in sorted(self.targets)), ''
        if verb == 'ls':
            if not self.tables:
                return 0, 'No devices found\n', ''
            return 0, ''.join('%s\t(253:%d)\n' % (n, self.minors[n])
                              for n in sorted(self.tables)), ''
        if verb == 'create':
            if name in self.tables:
                return 1, '', 'device-mapper: create ioctl failed: ' \
                              'Device or resource busy'
            for line in stdin.splitlines():
                for dev in re.findall(r'(/dev/\S+)', line):
                    if not self.is_block_device(dev):
                        return 1, '', 'device-mapper: reload ioctl ' \
                                      'failed: No such device or address'
            self.tables[name] = stdin
            self.minors[name] = self._next_minor
            self._next_minor += 1
            return 0, '', ''
        if name not in self.tables:
            return 1, '', 'Device %s not found' % name
        if verb == 'info':
            if '--options' in args:
                return 0, '%d\n' % self.open_counts.get(name, 0), ''
            return 0, 'Name: %s\n' % name, ''
        if verb == 'remove':
            if self.open_counts.get(name):
                return 1, '', 'device-mapper: remove ioctl failed: ' \
                              'Device or resource busy'
            del self.tables[name]
            return 0, '', ''
        if verb == 'table':
            return 0, self.tables[name], ''
        if verb == 'reload':
            for dev in re.findall(r'(/dev/\S+)', stdin):
                if not self.is_block_device(dev):
                    return 1, '', 'device-mapper: reload ioctl failed: ' \
                                  'No such device or address'
            self.inactive[name] = stdin
            return 0, '', ''
        if verb == 'resume':
            if name in self.inactive:
                self.tables[name] = self.inactive.pop(name)
            return 0, '', ''
        if verb == 'clear':
            self.inactive.pop(name, None)
            return 0, '', ''
        if verb == 'status':
            line = self.tables[name].split('\n')[0].split()
            if line[2] == 'cache':
                return 0, ('0 %s cache 8 20/2048 %s 5/1024 7 3 0 0 0 5 0 '
                           '1 writethrough 2 migration_threshold 2048 smq '
                           '0 rw -\n' % (line[1], line[6])), ''
            if line[2] == 'thin':
                return 0, '0 %s thin 256 255\n' % line[1], ''
            if line[2] == 'thin-pool':
                total = int(line[1]) // int(line[5])
                used = self.pool_used.get(name, 0)
                return 0, ('0 %s thin-pool 1 20/2048 %d/%d - %s '
                           'discard_passdown error_if_no_space - 1024\n' % (
                               line[1], used, total,
                               'out_of_data_space' if used >= total
                               else 'rw')), ''
            return 0, '0 %s %s\n' % (line[1], line[2]), ''
        return 1, '', 'unknown verb %s' % verb

    def _message(self, pool, words):
        if pool not in self.tables or ' thin-pool ' not in \
                self.tables[pool]:
            return 1, '', 'Device %s not found' % pool
        ids = self.thin_ids.setdefault(pool, set())
        verb, dev_id = words[0], int(words[1])
        if verb in ('create_thin', 'create_snap'):
            if dev_id in ids or (verb == 'create_snap' and
                                 int(words[2]) not in ids):
                return 1, '', 'device-mapper: message ioctl failed: ' \
                              'File exists'
            ids.add(dev_id)
        elif verb == 'delete':
            if dev_id not in ids:
                return 1, '', 'device-mapper: message ioctl failed: ' \
                              'No data available'
            ids.discard(dev_id)
        return 0, '', ''

    def _losetup(self, args):
        if args[0] == '--find':
            path = args[-1]
            for dev, back in self.loops.items():
                if back == path:
                    return 0, dev + '\n', ''
            n = 0
            while '/dev/loop%d' % n in self.loops:
                n += 1
            self.loops['/dev/loop%d' % n] = path
            self.loop_sectors['/dev/loop%d' % n] = \
                os.path.getsize(path) // 512
            return 0, '/dev/loop%d\n' % n, ''
        if args[0] == '--set-capacity':
            if args[1] not in self.loops:
                return 1, '', 'losetup: %s: failed' % args[1]
            self.loop_sectors[args[1]] = \
                os.path.getsize(self.loops[args[1]]) // 512
            return 0, '', ''
        if args[0] == '--detach':
            if self.loops.pop(args[1], None) is None:
                return 1, '', 'losetup: %s: detach failed' % args[1]
            return 0, '', ''
        if args[0] == '--list':
            return 0, json.dumps({'loopdevices': [
                {'name': d, 'back-file': b}
                for d, b in sorted(self.loops.items())]}), ''
        return 1, '', 'unknown losetup call'

    # -- helpers for assertions ------------------------------------------

    def commands(self, skip_queries=True):
        """Commands that change something (no info/ls/table/status)."""
        queries = ('dmsetup info', 'dmsetup ls', 'dmsetup table',
                   'dmsetup status', 'dmsetup targets', 'losetup --list')
        return [c for c in self.calls
                if not (skip_queries and c[0].startswith(queries))]


class PrivsepFixture(fixtures.Fixture):
    """Run privileged entrypoints in-process against a FakeKernel.

    Fails loudly if anything would start a privsep daemon.
    """

    def __init__(self, host_devices=None, state_path=None):
        super().__init__()
        self.kernel = FakeKernel(host_devices)
        #: What the daemon is confined to: the test's state paths live
        #: in the temporary directory.
        self.confinement = priv_utils.Confinement(
            state_path=os.path.realpath(state_path or tempfile.gettempdir()))

    def _setUp(self):
        self.useFixture(fixtures.MockPatchObject(
            fastboot_nova.privsep.sys_admin_pctxt, 'client_mode', False))

        def no_daemon(*args, **kwargs):
            raise AssertionError('a test tried to start the privsep daemon')

        self.useFixture(fixtures.MockPatchObject(
            priv_context.PrivContext, 'start', no_daemon))
        k = self.kernel
        for attr, fake in (('_runner', k.run),
                           ('_is_block_device', k.is_block_device),
                           ('device_sectors', k.device_sectors),
                           ('_device_info', k.device_info),
                           ('_confinement', self.confinement)):
            self.useFixture(fixtures.MockPatchObject(priv_utils, attr, fake))
        for attr, fake in (('_write_zeros', k.write_zeros),
                           ('_smq_available', k.smq_available),
                           ('_module_on_disk', k.module_on_disk)):
            self.useFixture(fixtures.MockPatchObject(dm_priv, attr, fake))


class FakeDevices:
    """HostDevices over a FakeKernel."""

    def __init__(self, kernel, identities=None):
        self.kernel = kernel
        self.identities = identities if identities is not None else {}

    def is_block(self, path):
        return self.kernel.is_block_device(path)

    def sectors(self, path):
        return self.kernel.device_sectors(path)

    def identity(self, path):
        return '%d:%s' % (self.sectors(path),
                          self.identities.get(path, 'serial-' + path))
