"""Run the real dm backend inside a TCG guest running the Debian kernel.

The host has no device-mapper; the guest has. Each test boots the guest of
:mod:`tests.kernel.kguest` (built once and cached; the first build runs
debootstrap, about 1-2 minutes) with fresh scratch disks, runs
``tests/kernel/guest_runner.py`` in it against this source tree and checks
the JSON it prints.

Needs root (debootstrap), qemu-system-x86, qemu's qboot ROM, busybox-static,
debootstrap, erofs-utils, e2fsprogs and a reachable Debian mirror for the
first build. Skipped unless FASTBOOT_KERNEL_TESTS=1.
"""

import hashlib
import json
import os
import random
import shutil
import tempfile
import time

import testtools

from tests.kernel import guest_runner
from tests.kernel import kguest

ENABLE_ENV = 'FASTBOOT_KERNEL_TESTS'
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ORIGIN_MIB = 64
#: Room for two 64 MiB images at once (add/remove under I/O).
CACHE_MIB = 160
SMALL_MIB = 16


def _write_origin(path, mib, seed):
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, 'wb') as f:
        for _ in range(mib):
            block = rng.randbytes(1 << 20)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


class KernelTestCase(testtools.TestCase):

    guest = None
    build_seconds = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.environ.get(ENABLE_ENV) != '1':
            raise testtools.testcase.TestSkipped(
                'set %s=1 to boot kernel-test guests' % ENABLE_ENV)
        started = time.monotonic()
        cls.guest = kguest.build()
        cls.build_seconds = time.monotonic() - started

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='fb-ktest-')
        if os.environ.get('FASTBOOT_KTEST_KEEP') != '1':
            self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.state = os.path.join(self.tmp, 'state.ext4')
        # Journaled: the persistence tests kill the guest.
        # Sparse; room for the pool-full scenario to grow its pool.
        kguest.make_state_disk(self.state, size_mib=512, journal=True)
        self.origin = os.path.join(self.tmp, 'origin1.raw')
        self.sha = _write_origin(self.origin, ORIGIN_MIB, 'origin-1')
        self.origin2 = os.path.join(self.tmp, 'origin2.raw')
        self.sha2 = _write_origin(self.origin2, ORIGIN_MIB, 'origin-2')
        self.small = os.path.join(self.tmp, 'small.raw')
        with open(self.small, 'wb') as f:
            f.truncate(SMALL_MIB << 20)
        self.cache = os.path.join(self.tmp, 'cache.raw')
        with open(self.cache, 'wb') as f:
            # Garbage, not zeros: a cache that trusted stale metadata or
            # served unmapped blocks would show it.
            f.write(random.Random('cache').randbytes(CACHE_MIB << 20))

    def boot(self, kill_on=None, **args):
        # Disk order is the guest's device order: vdb state, vdc origin,
        # vdd cache, vde second origin, vdf a cache too small for vdc.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.origin2, 'origin2'),
                 (self.small, 'small0')]
        args = dict({'origin': '/dev/vdc', 'cache': '/dev/vdd',
                     'origin2': '/dev/vde', 'small': '/dev/vdf',
                     'sha': self.sha, 'sha2': self.sha2}, **args)
        res = self.run_guest(disks, args, kill_on=kill_on)
        print('\n[ktest] build/cached %.1fs, guest wall %.1fs, runner %.1fs, '
              'timings %s' % (self.build_seconds, res.wall_seconds,
                              res.result.get('runner_seconds', 0),
                              res.result.get('timings')))
        self.assert_checks(res)
        return res

    def run_guest(self, disks, args, **kwargs):
        """Boot the guest on ``disks`` with ``args``; the result is there."""
        res = kguest.run(self.guest, SOURCE_DIR, disks,
                         ['%s=%s' % kv for kv in sorted(args.items())],
                         console_log=os.path.join(self.tmp, 'console.log'),
                         **kwargs)
        self.addDetail('console', testtools.content.text_content(
            res.console[-20000:]))
        self.assertIsNotNone(res.result, 'no result on the console (QEMU '
                             'exit %s); console:\n%s' % (
                                 res.returncode, res.console[-4000:]))
        self.addDetail('result', testtools.content.text_content(
            json.dumps(res.result, indent=1, sort_keys=True)))
        return res

    def assert_checks(self, res, required=()):
        """Every check passed, ``required`` ones among them, no error."""
        self.assertIsNone(res.result.get('error'))
        checks = res.result.get('checks', {})
        self.assertEqual({}, {k: v for k, v in checks.items() if not v[0]})
        self.assertEqual([], [n for n in required if n not in checks])
        self.assertTrue(res.result['ok'])


class TestDmSmoke(KernelTestCase):

    def test_linear_snapshot_through_privsep_daemon(self):
        self.boot(scenario='smoke', privsep='daemon')


class TestDmSsdGroup(KernelTestCase):

    def test_two_cache_devices_as_one_group(self):
        res = self.boot(scenario='ssdgroup', privsep='daemon')
        self.assertIn(' linear ', res.result['info']['group_table'])


class TestDmEngine(KernelTestCase):

    def test_engine_in_guest(self):
        res = self.boot(scenario='engine', privsep='daemon')
        self.assertIn(' thin ', res.result['info']['vm1_table'])
        checks = res.result['checks']
        for name in ('devices_after_add', 'cache_target', 'vm1_sees_own',
                     'vm2_sees_own', 'vm1_persisted', 'vm2_persisted',
                     'teardown_clean', 'new_origin_no_stale_blocks',
                     'cache_too_small_refused',
                     'cache_too_small_nothing_built',
                     'outage_uncached_read_fails', 'outage_vm_data_readable',
                     'outage_snapshot_valid', 'outage_over_reads_origin',
                     'outage_over_vm_data', 'pool_full_enospc',
                     'pool_full_data_kept', 'no_dm_devices_left'):
            self.assertIn(name, checks)


class TestDmEngineSnapshotType(KernelTestCase):

    def test_engine_in_guest_with_dm_snapshot(self):
        res = self.boot(scenario='engine', type='snapshot', privsep='inproc')
        self.assertIn(' snapshot ', res.result['info']['vm1_table'])
        self.assertIn('outage_snapshot_valid', res.result['checks'])


class TestDmMissingModule(KernelTestCase):

    def test_no_dm_cache_module(self):
        # The guest boots without dm-cache and has no modules to load on
        # demand: the engine must say so and build nothing.
        res = self.boot(scenario='nomodule', privsep='inproc',
                        skipmod='dm-cache.ko,dm-cache-smq.ko')
        self.assertIn('clear_error', res.result['checks'])
        self.assertIn('nothing_built', res.result['checks'])


class TestDmHostReboot(KernelTestCase):
    """VM data and state across host reboots, clean and unclean.

    Three boots on the same state, origin and cache disks: VMs write and
    the host stops cleanly; a fresh engine after the reboot restores both
    VMs with a warm cache, they write more and the host is killed (QEMU
    SIGKILL: no sync, no unmount); a fresh engine after that restores both
    with everything that was flushed, and a cold cache.
    """

    def test_clean_then_unclean_reboot(self):
        first = self.boot(scenario='persist1', stop='clean',
                          privsep='inproc')
        used = first.result['info']['used_blocks']
        second = self.boot(scenario='persist2', expect='warm', used=used,
                           rounds=1, stop='kill', privsep='inproc',
                           kill_on=guest_runner.KILL_TAG)
        self.assertIn('cache_warm', second.result['checks'])
        # The writes of the round made after the reboot, read back.
        self.assertIn('vm1_round2', second.result['checks'])
        self.assertIn('vm2_round2', second.result['checks'])
        third = self.boot(scenario='persist2', expect='cold', rounds=2,
                          privsep='inproc')
        checks = third.result['checks']
        for name in ('restored', 'cache_cold', 'vm1_data_survived',
                     'vm2_data_survived', 'cache_reads_origin'):
            self.assertIn(name, checks)
