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

from tests.kernel import kguest

ENABLE_ENV = 'FASTBOOT_KERNEL_TESTS'
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ORIGIN_MIB = 64
CACHE_MIB = 128


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
        kguest.make_state_disk(self.state)
        self.origin = os.path.join(self.tmp, 'origin1.raw')
        self.sha = _write_origin(self.origin, ORIGIN_MIB, 'origin-1')
        self.origin2 = os.path.join(self.tmp, 'origin2.raw')
        self.sha2 = _write_origin(self.origin2, ORIGIN_MIB, 'origin-2')
        self.cache = os.path.join(self.tmp, 'cache.raw')
        with open(self.cache, 'wb') as f:
            # Garbage, not zeros: a cache that trusted stale metadata or
            # served unmapped blocks would show it.
            f.write(random.Random('cache').randbytes(CACHE_MIB << 20))

    def boot(self, **args):
        # Disk order is the guest's device order: vdb state, vdc origin,
        # vdd cache, vde second origin.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.origin2, 'origin2')]
        args = dict({'origin': '/dev/vdc', 'cache': '/dev/vdd',
                     'origin2': '/dev/vde', 'sha': self.sha,
                     'sha2': self.sha2}, **args)
        log = os.path.join(self.tmp, 'console.log')
        res = kguest.run(self.guest, SOURCE_DIR, disks,
                         ['%s=%s' % kv for kv in sorted(args.items())],
                         console_log=log)
        self.addDetail('console', testtools.content.text_content(
            res.console[-20000:]))
        self.assertIsNotNone(res.result, 'no result on the console (QEMU '
                             'exit %s); console:\n%s' % (
                                 res.returncode, res.console[-4000:]))
        self.addDetail('result', testtools.content.text_content(
            json.dumps(res.result, indent=1, sort_keys=True)))
        print('\n[ktest] build/cached %.1fs, guest wall %.1fs, runner %.1fs, '
              'timings %s' % (self.build_seconds, res.wall_seconds,
                              res.result.get('runner_seconds', 0),
                              res.result.get('timings')))
        failed = {k: v for k, v in res.result.get('checks', {}).items()
                  if not v[0]}
        self.assertEqual({}, failed)
        self.assertIsNone(res.result.get('error'))
        self.assertTrue(res.result['ok'])
        return res


class TestDmSmoke(KernelTestCase):

    def test_linear_snapshot_through_privsep_daemon(self):
        self.boot(scenario='smoke', privsep='daemon')


class TestDmEngine(KernelTestCase):

    def test_engine_in_guest(self):
        res = self.boot(scenario='engine', privsep='daemon')
        checks = res.result['checks']
        for name in ('devices_after_add', 'cache_target', 'vm1_sees_own',
                     'vm2_sees_own', 'vm1_persisted', 'vm2_persisted',
                     'teardown_clean', 'new_origin_no_stale_blocks',
                     'no_dm_devices_left'):
            self.assertIn(name, checks)
