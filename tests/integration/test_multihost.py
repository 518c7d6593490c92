"""Boot storms over a tree of host caches, in network namespaces.

Real processes per emulated host (``fastboot agent``, ``fastboot create``,
qemu-storage-daemon, QEMU guests), a real coordinator and origin; bytes
counted on the veth links. Needs root (CI runs as root).
"""

import os

from oslotest import base

from fastboot_nova.demo import multihost
from tests.functional import base as fbase

CACHE_DIR = os.environ.get('FASTBOOT_TEST_CACHE',
                           '/tmp/fastboot-test-cache')


class TestMultiHost(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail('multi-host tests need root (network namespaces)')

    def test_seven_hosts_three_levels_deep(self):
        report = multihost.run_multihost_demo(
            fbase.make_conf(), hosts=7, vms_per_host=1, fanout=2,
            cache_dir=CACHE_DIR)
        # Host-to-host reads are authenticated (NBD TLS-PSK); a refused
        # child would read from the origin and break the egress bound.
        self.assertEqual('psk', report['export_auth'])
        self.assertEqual(7, len(report['hosts']))
        self.assertEqual(7, len(report['vms']))
        for vm in report['vms']:
            self.assertTrue(vm['ok'] and vm['checksum_ok'], vm)
        parents = {h['name']: h['parent'] for h in report['hosts']}

        def depth(host):
            return 0 if host is None else 1 + depth(parents[host])
        self.assertGreaterEqual(max(depth(h) for h in parents), 3)
        self.assertLessEqual(
            sum(1 for p in parents.values() if p is None), 2)
        # The origin sends about one boot's working set per child of its
        # own, not one per host.
        largest = max(h['ingress_bytes'] for h in report['hosts'])
        self.assertLessEqual(report['origin_egress_bytes'],
                             2 * 1.3 * largest)
        self.assertGreater(largest, 4 * 1024 * 1024)

    def test_killed_parent_mid_storm(self):
        report = multihost.run_multihost_demo(
            fbase.make_conf(), hosts=5, vms_per_host=1, fanout=2,
            cache_dir=CACHE_DIR, kill_parent_at=2)
        killed = report['killed_parent']
        self.assertIsNotNone(killed)
        self.assertEqual(5, len(report['vms']))
        survivors = [vm for vm in report['vms'] if not vm['on_killed_host']]
        # One VM per host: every host but the killed one.
        self.assertEqual(4, len(survivors))
        for vm in survivors:
            self.assertTrue(vm['ok'] and vm['checksum_ok'], vm)
        # The killed host was a parent: its children had to move.
        self.assertNotEqual([], killed['children'])
        moved = {e['host']: e['time'] - killed['time']
                 for e in report['reparent_events']
                 if e['old_parent'] == killed['host'] and
                 e['time'] >= killed['time']}
        self.assertEqual(sorted(killed['children']), sorted(moved))
        # Within reconnect delay (5 s) + 5 s of the kill.
        self.assertLess(max(moved.values()), 10)
