"""Every benchmark, end to end, at its ``--quick`` size.

The benchmarks (``gate/bench``, ``tests/kernel/bench.py``) print ratios
against baselines measured in the same run; nothing else runs them, so
without these tests they could break unnoticed. Each one runs as its tox
environment runs it (``python -m ...`` in a subprocess, ``--quick
--json``), and the figures it writes are checked for shape and sense: the
work was done (guests booted, bytes read, VMs created) and each ratio has
both sides. Timing is never asserted: under TCG on a shared machine only
the ratios printed mean anything.

Needs root (network namespaces, the kernel-test guest) and the ``test``
packages of bindep.txt, like ``tox -e integration`` and ``kernel``.
"""

import json
import os
import subprocess
import sys
import tempfile

from oslotest import base

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
#: Seconds a quick run may take on a loaded 2-core machine.
TIMEOUT = 900
#: The guests' build cache, read before oslotest's TempHomeDir fixture
#: points HOME at an empty directory: without it every benchmark built
#: its guest from scratch (the kernel bench ran debootstrap), minutes per
#: run that measure nothing the tests check. The builds themselves are
#: what kernel and integration do on a fresh cache.
CACHE_DIR = os.environ.get('FASTBOOT_TEST_CACHE') or os.path.join(
    os.path.expanduser('~'), '.cache', 'fastboot')
KTEST_CACHE_DIR = os.environ.get('FASTBOOT_KTEST_CACHE') or os.path.join(
    os.path.expanduser('~'), '.cache', 'fastboot')


class BenchSmokeTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail('the benchmarks need root (network namespaces, '
                      'loop devices, the kernel-test guest)')
        self.tmp = tempfile.mkdtemp(prefix='fb-bsmoke-', dir='/tmp')
        self.addCleanup(subprocess.run, ['rm', '-rf', self.tmp])

    def run_bench(self, module, *args):
        """Run ``python -m module --json FILE *args``; the JSON figures."""
        path = os.path.join(self.tmp, 'figures.json')
        env = dict(os.environ, FASTBOOT_TEST_CACHE=CACHE_DIR,
                   FASTBOOT_KTEST_CACHE=KTEST_CACHE_DIR)
        proc = subprocess.run(
            [sys.executable, '-m', module, '--json', path, *args],
            cwd=SOURCE_DIR, capture_output=True, text=True, timeout=TIMEOUT,
            env=env)
        self.addDetail('output', _text(proc.stdout + proc.stderr))
        self.assertEqual(0, proc.returncode, proc.stderr[-4000:])
        with open(path) as f:
            return json.load(f), proc.stdout

    def assertRatio(self, part, key='ratio'):
        self.assertGreater(part[key], 0, part)


def _text(value):
    from testtools import content
    return content.text_content(value[-20000:])


class TestStormAndSnapshotBench(BenchSmokeTestCase):
    """``tox -e bench``: the boot storm and per-VM snapshot creates."""

    def test_quick(self):
        fig, out = self.run_bench('gate.bench', '--quick', '--vms', '2',
                                  '--snapshots', '5')
        boots = fig['boots']
        self.assertEqual((2, 2, 2), (boots['total'], boots['ok'],
                                     boots['checksum_ok']), boots)
        origin = fig['origin_bytes']
        # A boot reads a little of the image; the copies read all of it.
        self.assertGreater(origin['fastboot'], 0)
        self.assertGreater(origin['full_copy'], origin['fastboot'])
        self.assertRatio(origin)
        self.assertRatio(fig['provision_seconds'])
        snaps = fig['snapshot_create_seconds']
        self.assertEqual(5, snaps['engine']['count'])
        self.assertEqual(5, snaps['bare_qemu_img']['count'])
        self.assertIn('fastboot/copy', out)


class TestHierarchyAndTlsBench(BenchSmokeTestCase):
    """``tox -e bench-hierarchy``: egress growth, shaped storm, TLS cost."""

    def test_quick(self):
        fig, out = self.run_bench('gate.bench.hierarchy', '--quick')
        growth = fig['growth']
        self.assertEqual([1, 3], [row['hosts'] for row in growth])
        for row in growth:
            self.assertEqual(row['hosts'], row['ok'], row)
            self.assertGreater(row['origin_egress_bytes'], 0, row)
        self.assertEqual(3, fig['fastboot']['ok'], fig['fastboot'])
        self.assertEqual(3, fig['full_copy']['ok'], fig['full_copy'])
        self.assertGreater(fig['full_copy']['origin_egress_bytes'], 0)
        tls = fig['tls']
        self.assertEqual(16 << 20, tls['size_bytes'])
        self.assertRatio(tls, 'psk_seconds')
        self.assertRatio(tls, 'none_seconds')
        self.assertIn('psk/none', out)


class TestKernelBench(BenchSmokeTestCase):
    """``tox -e bench-kernel``: the dm backend inside the test guest."""

    def test_quick(self):
        fig, out = self.run_bench('tests.kernel.bench', '--quick')
        self.assertTrue(fig['ok'], fig.get('error'))
        info = fig['info']
        self.assertEqual((3, 16), (info['k'], info['origin_mib']))
        compare = info['compare']
        for design in ('snapshot', 'thin'):
            self.assertGreater(compare['read_' + design]['seq_mbs'], 0)
            self.assertGreater(
                compare['write_' + design]['first_seq_mbs'], 0)
        self.assertIn('thin/snapshot', out)


class TestSteadyBench(BenchSmokeTestCase):

    def test_quick(self):
        figures, out = self.run_bench('gate.bench.steady', '--quick')
        self.assertIn('Steady-state I/O', out)
        cells = {row['cell']: row for row in figures['rows']}
        # 2 ops x 2 patterns x 2 sizes x 2 depths; cold only for reads.
        self.assertEqual(16, len(cells))
        for name, row in cells.items():
            for variant in ('nbd', 'direct'):
                self.assertRatio(row, variant + '_ratio')
            if ' read ' in name:
                self.assertRatio(row, 'cold_ratio')
            else:
                self.assertNotIn('cold_ratio', row)
        cpu = figures['daemon_cpu_s_per_gib']
        # The daemon serves the nbd and cold VMs' reads, not the direct
        # VM's: it reads the sealed cache file itself.
        self.assertGreater(cpu['nbd'], 0)
        self.assertGreater(cpu['cold'], 0)
        self.assertLess(cpu['direct'], cpu['nbd'] / 4)
