"""Unit tests of the network testbed: exact ip/tc argv, names, cleanup."""

import json
import subprocess
from unittest import mock

import fixtures
from oslotest import base

from fastboot_nova import exception
from fastboot_nova import testbed
from fastboot_nova.testbed import netns

ALL_CAPS = (1 << 41) - 1


class FakeNetns:
    """A recording ``execute`` that models ``ip netns add/list/delete``.

    ``fail`` is a predicate on the argv tuple: a matching command raises
    CommandFailed, like a real ``ip`` error. ``pids`` maps a namespace to
    the pids ``ip netns pids`` reports; ``links`` is the JSON ``ip -s -j
    link show`` prints.
    """

    def __init__(self, namespaces=(), fail=None, pids=None, links=None):
        self.calls = []
        self.namespaces = list(namespaces)
        self.fail = fail
        self.pids = pids or {}
        self.links = links or []

    def __call__(self, *cmd, check_exit_code=True, timeout=None):
        self.calls.append(cmd)
        if self.fail and self.fail(cmd):
            raise exception.CommandFailed(cmd=' '.join(cmd[:2]), code=2,
                                          stderr='RTNETLINK answers: boom')
        if cmd[:3] == ('ip', 'netns', 'list'):
            return ''.join('%s (id: %d)\n' % (ns, i)
                           for i, ns in enumerate(self.namespaces)), ''
        if cmd[:3] == ('ip', 'netns', 'add'):
            self.namespaces.append(cmd[3])
        elif cmd[:3] == ('ip', 'netns', 'delete'):
            self.namespaces.remove(cmd[3])
        elif cmd[:3] == ('ip', 'netns', 'pids'):
            return ''.join('%d\n' % p for p in self.pids.get(cmd[3], [])), ''
        elif cmd[-3:] == ('-j', 'link', 'show'):
            return json.dumps(self.links), ''
        return '', ''


def nsenter(ns):
    return ('nsenter', '--net=/run/netns/%s' % ns)


def node_cmds(node, address, sw='fbt-sw'):
    ns = 'fbt-%s' % node
    return [
        ('ip', 'netns', 'add', ns),
        nsenter(ns) + ('sysctl', '-q', '-w',
                       'net.ipv6.conf.default.disable_ipv6=1'),
        ('ip', '-n', sw, 'link', 'add', 'p-%s' % node, 'type', 'veth',
         'peer', 'name', 'eth0', 'netns', ns),
        ('ip', '-n', sw, 'link', 'set', 'dev', 'p-%s' % node, 'master',
         'br0', 'up'),
        ('ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up'),
        ('ip', '-n', ns, 'addr', 'add', '%s/24' % address, 'dev', 'eth0'),
        ('ip', '-n', ns, 'link', 'set', 'dev', 'eth0', 'up'),
    ]


def tbf_cmds(node, rate, burst, sw='fbt-sw'):
    tbf = ('root', 'tbf', 'rate', rate, 'burst', burst, 'latency', '100ms')
    return [
        ('tc', '-n', sw, 'qdisc', 'replace', 'dev', 'p-%s' % node) + tbf,
        ('tc', '-n', 'fbt-%s' % node, 'qdisc', 'replace', 'dev',
         'eth0') + tbf,
    ]


SWITCH_CMDS = [
    ('ip', 'netns', 'add', 'fbt-sw'),
    nsenter('fbt-sw') + ('sysctl', '-q', '-w',
                         'net.ipv6.conf.default.disable_ipv6=1'),
    ('ip', '-n', 'fbt-sw', 'link', 'add', 'br0', 'type', 'bridge',
     'mcast_snooping', '0'),
    ('ip', '-n', 'fbt-sw', 'link', 'set', 'dev', 'br0', 'up'),
]
LIST = ('ip', 'netns', 'list')
COUNTERS = ('ip', '-n', 'fbt-sw', '-s', '-j', 'link', 'show')


def link(name, rx, tx, rx_packets=0, tx_packets=0):
    return {'ifname': name, 'stats64': {
        'rx': {'bytes': rx, 'packets': rx_packets},
        'tx': {'bytes': tx, 'packets': tx_packets}}}


LINKS = [link('lo', 0, 0), link('br0', 0, 0), link('p-origin', 0, 0),
         link('p-host0', 0, 0), link('p-host1', 0, 0)]


class TestbedTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.caps = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.testbed.netns._effective_caps',
            return_value=ALL_CAPS)).mock
        self.which = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.testbed.netns.shutil.which',
            side_effect=lambda tool: '/usr/bin/' + tool)).mock
        # Never signal a real process from a unit test.
        self.kill = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.testbed.netns._kill_all')).mock
        self.in_netns = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.testbed.netns._in_netns',
            side_effect=lambda pid, ns: pid != 666)).mock

    def make(self, hosts=2, fake=None, **kw):
        self.fake = fake or FakeNetns(links=LINKS)
        kw.setdefault('prefix', 'fbt')
        kw.setdefault('subnet', '10.250.7.0/24')
        return testbed.Testbed(hosts, execute=self.fake, **kw)


class TestCreate(TestbedTestCase):

    def test_two_hosts_exact_commands(self):
        tb = self.make().create()
        self.assertEqual(
            [LIST] + SWITCH_CMDS
            + node_cmds('origin', '10.250.7.1')
            + node_cmds('host0', '10.250.7.2')
            + node_cmds('host1', '10.250.7.3')
            + [COUNTERS],
            self.fake.calls)
        self.assertTrue(tb.created)
        self.assertEqual(['fbt-sw', 'fbt-origin', 'fbt-host0', 'fbt-host1'],
                         self.fake.namespaces)

    def test_two_hosts_rate_limited_both_ways(self):
        self.make(rate='100mbit').create()
        # 100 Mbit/s: a 10 ms bucket is 125000 bytes.
        self.assertEqual(
            [LIST] + SWITCH_CMDS
            + node_cmds('origin', '10.250.7.1')
            + node_cmds('host0', '10.250.7.2')
            + tbf_cmds('host0', '100000000bit', '125000')
            + node_cmds('host1', '10.250.7.3')
            + tbf_cmds('host1', '100000000bit', '125000')
            + [COUNTERS],
            self.fake.calls)

    def test_origin_rate_only(self):
        self.make(origin_rate=1000000).create()
        tc = [c for c in self.fake.calls if c[0] == 'tc']
        # 1 Mbit/s: 10 ms is 1250 bytes, below the 16 KiB floor.
        self.assertEqual(tbf_cmds('origin', '1000000bit', '16384'), tc)

    def test_leftovers_of_same_prefix_removed_first(self):
        fake = FakeNetns(namespaces=['fbt-sw', 'fbt-host0', 'other-sw',
                                     'fbt2-host0'], links=LINKS)
        self.make(fake=fake).create()
        self.assertEqual([
            LIST,
            ('ip', 'netns', 'pids', 'fbt-host0'),
            ('ip', 'netns', 'pids', 'fbt-sw'),
            ('ip', 'netns', 'delete', 'fbt-host0'),
            ('ip', 'netns', 'delete', 'fbt-sw'),
        ] + SWITCH_CMDS, fake.calls[:9])
        self.assertEqual(['other-sw', 'fbt2-host0', 'fbt-sw', 'fbt-origin',
                          'fbt-host0', 'fbt-host1'], fake.namespaces)

    def test_failure_midway_removes_everything(self):
        fake = FakeNetns(
            namespaces=['unrelated'],
            fail=lambda cmd: 'p-host1' in cmd and 'veth' in cmd)
        tb = self.make(fake=fake)
        e = self.assertRaises(testbed.TestbedError, tb.create)
        self.assertIn('create the link of host1', str(e))
        self.assertIn('RTNETLINK answers: boom', str(e))
        failed = fake.calls.index(node_cmds('host1', '10.250.7.3')[2])
        self.assertEqual([
            LIST,
            ('ip', 'netns', 'pids', 'fbt-host0'),
            ('ip', 'netns', 'pids', 'fbt-host1'),
            ('ip', 'netns', 'pids', 'fbt-origin'),
            ('ip', 'netns', 'pids', 'fbt-sw'),
            ('ip', 'netns', 'delete', 'fbt-host0'),
            ('ip', 'netns', 'delete', 'fbt-host1'),
            ('ip', 'netns', 'delete', 'fbt-origin'),
            ('ip', 'netns', 'delete', 'fbt-sw'),
        ], fake.calls[failed + 1:])
        self.assertEqual(['unrelated'], fake.namespaces)
        self.assertFalse(tb.created)

    def test_not_root(self):
        self.caps.return_value = 1 << netns.CAP_SYS_ADMIN
        e = self.assertRaises(testbed.TestbedError, self.make().create)
        self.assertIn('Network testbed fbt: needs root', str(e))
        self.assertIn('missing CAP_NET_ADMIN', str(e))
        self.assertEqual([], self.fake.calls)

    def test_no_ip_netns(self):
        fake = FakeNetns(fail=lambda cmd: cmd == LIST)
        e = self.assertRaises(testbed.TestbedError,
                              self.make(fake=fake).create)
        self.assertIn('"ip netns" does not work here', str(e))
        self.assertEqual([LIST], fake.calls)

    def test_tc_needed_only_with_rates(self):
        self.which.side_effect = lambda t: None if t == 'tc' else '/bin/' + t
        self.make().create()
        e = self.assertRaises(testbed.TestbedError,
                              self.make(rate='10mbit').create)
        self.assertIn('tc is not installed (package iproute2)', str(e))

    def test_context_manager(self):
        with self.make() as tb:
            self.assertTrue(tb.created)
            self.assertEqual(4, len(self.fake.namespaces))
        self.assertEqual([], self.fake.namespaces)
        self.assertFalse(tb.created)


class TestNames(TestbedTestCase):

    def test_nodes_and_addresses(self):
        tb = self.make(hosts=3)
        self.assertEqual(
            testbed.Node(name='origin', netns='fbt-origin',
                         address='10.250.7.1', port='p-origin'), tb.origin)
        self.assertEqual(
            [('host0', 'fbt-host0', '10.250.7.2', 'p-host0'),
             ('host1', 'fbt-host1', '10.250.7.3', 'p-host1'),
             ('host2', 'fbt-host2', '10.250.7.4', 'p-host2')],
            [(h.name, h.netns, h.address, h.port) for h in tb.hosts])
        self.assertEqual(['fbt-origin', 'fbt-host0', 'fbt-host1',
                          'fbt-host2', 'fbt-sw'], tb.namespaces)
        self.assertIs(tb.hosts[1], tb.node(1))
        self.assertIs(tb.hosts[1], tb.node('host1'))
        self.assertIs(tb.origin, tb.node(tb.origin))
        self.assertRaises(KeyError, tb.node, 'host9')

    def test_random_prefix_and_derived_subnet(self):
        a = testbed.Testbed(1, execute=FakeNetns())
        b = testbed.Testbed(1, execute=FakeNetns())
        self.assertRegex(a.prefix, r'^fb[0-9a-f]{6}$')
        self.assertNotEqual(a.prefix, b.prefix)
        self.assertRegex(str(a.subnet), r'^10\.250\.\d+\.0/24$')
        # Derived from the prefix, so the same prefix gets the same subnet.
        self.assertEqual(testbed.Testbed(1, prefix=a.prefix).subnet,
                         a.subnet)

    def test_bad_arguments(self):
        for prefix in ('', 'Fb', '1ab', 'a-b', 'a' * 13, 'a b', 'a/b'):
            self.assertRaises(ValueError, testbed.Testbed, 1, prefix=prefix)
        for hosts in (0, -1, 251, 1.5, True, '2'):
            self.assertRaises(ValueError, testbed.Testbed, hosts)
        # A /29 has 6 addresses: the origin and 5 hosts.
        testbed.Testbed(5, subnet='10.250.0.0/29')
        self.assertRaises(ValueError, testbed.Testbed, 6,
                          subnet='10.250.0.0/29')
        self.assertRaises(ValueError, testbed.Testbed, 1,
                          subnet='10.250.0.1/24')
        self.assertRaises(ValueError, testbed.Testbed, 1,
                          subnet='8.8.8.0/24')
        self.assertRaises(ValueError, testbed.Testbed, 1, subnet='nonsense')
        self.assertRaises(ValueError, testbed.Testbed, 1, rate='fast')

    def test_parse_rate(self):
        for rate, bps in (('100mbit', 10 ** 8), ('1gbit', 10 ** 9),
                          ('500kbit', 500000), ('1.5Mbit', 1500000),
                          ('10mbps', 8 * 10 ** 7), ('1mibit', 2 ** 20),
                          (64000, 64000), ('64000', 64000)):
            self.assertEqual(bps, testbed.parse_rate(rate), rate)
        for rate in ('', 'fast', '10 furlongs', '-1mbit', '1kbit', 100,
                     None, True):
            self.assertRaises(ValueError, testbed.parse_rate, rate)


class TestCleanup(TestbedTestCase):

    def test_order_and_scope(self):
        fake = FakeNetns(namespaces=['fbt-sw', 'fbt-origin', 'fbt-host1',
                                     'fbt-host0', 'fbtx-sw', 'fb-sw'],
                         pids={'fbt-host0': [41, 42],
                               'fbt-origin': [7, 666]})
        removed = testbed.cleanup_prefix('fbt', fake)
        # Processes first (they keep a namespace alive), then the nodes,
        # the switch last.
        self.assertEqual([
            LIST,
            ('ip', 'netns', 'pids', 'fbt-host0'),
            ('ip', 'netns', 'pids', 'fbt-host1'),
            ('ip', 'netns', 'pids', 'fbt-origin'),
            ('ip', 'netns', 'pids', 'fbt-sw'),
            ('ip', 'netns', 'delete', 'fbt-host0'),
            ('ip', 'netns', 'delete', 'fbt-host1'),
            ('ip', 'netns', 'delete', 'fbt-origin'),
            ('ip', 'netns', 'delete', 'fbt-sw'),
        ], fake.calls)
        # 666 left the namespace (or was recycled) since it was listed.
        self.kill.assert_called_once_with([41, 42, 7])
        self.in_netns.assert_any_call(666, 'fbt-origin')
        self.assertEqual(['fbt-host0', 'fbt-host1', 'fbt-origin', 'fbt-sw'],
                         removed)
        self.assertEqual(['fbtx-sw', 'fb-sw'], fake.namespaces)

    def test_nothing_to_do(self):
        fake = FakeNetns(namespaces=['other'])
        self.assertEqual([], testbed.cleanup_prefix('fbt', fake))
        self.assertEqual([LIST], fake.calls)
        self.kill.assert_not_called()

    def test_errors_are_collected(self):
        fake = FakeNetns(namespaces=['fbt-sw', 'fbt-host0'],
                         fail=lambda c: c[2:] == ('delete', 'fbt-host0'))
        e = self.assertRaises(testbed.TestbedError, testbed.cleanup_prefix,
                              'fbt', fake)
        self.assertIn('delete fbt-host0', str(e))
        # One failure does not stop the rest.
        self.assertEqual(['fbt-host0'], fake.namespaces)

    def test_twice_is_harmless(self):
        tb = self.make().create()
        tb.cleanup()
        tb.cleanup()
        self.assertEqual([], self.fake.namespaces)


class TestRates(TestbedTestCase):

    def test_set_and_remove(self):
        tb = self.make().create()
        self.fake.calls.clear()
        tb.set_rate('host1', '20mbit')
        tb.set_rate('host1', None)
        tb.set_rate('host0', None)  # never limited: nothing to remove
        self.assertEqual(
            tbf_cmds('host1', '20000000bit', '25000') + [
                ('tc', '-n', 'fbt-sw', 'qdisc', 'del', 'dev', 'p-host1',
                 'root'),
                ('tc', '-n', 'fbt-host1', 'qdisc', 'del', 'dev', 'eth0',
                 'root')],
            self.fake.calls)
        self.assertEqual({'origin': None, 'host0': None, 'host1': None},
                         tb.rates)

    def test_tc_failure(self):
        tb = self.make().create()
        self.fake.fail = lambda c: c[0] == 'tc'
        e = self.assertRaises(testbed.TestbedError, tb.set_rate, 0, '1mbit')
        self.assertIn('limit the ingress of host0', str(e))


class TestCounters(TestbedTestCase):

    def test_snapshot_is_seen_from_the_node(self):
        tb = self.make().create()
        self.fake.links = [link('br0', 5, 5),
                           link('p-origin', 100, 7, 2, 1),
                           link('p-host0', 3, 1000, 1, 9),
                           link('p-host1', 0, 0)]
        snap = tb.snapshot()
        # The switch end sends what the origin receives and vice versa.
        self.assertEqual(testbed.LinkCounters(rx_bytes=7, tx_bytes=100,
                                              rx_packets=1, tx_packets=2),
                         snap['origin'])
        self.assertEqual(1000, snap['host0'].rx_bytes)
        self.assertEqual(['origin', 'host0', 'host1'], list(snap))

    def test_reset_and_delta(self):
        tb = self.make().create()
        self.fake.links = [link('p-origin', 100, 0), link('p-host0', 0, 90),
                           link('p-host1', 0, 0)]
        self.assertEqual(100, tb.delta()['origin'].tx_bytes)
        before = tb.reset()
        self.fake.links = [link('p-origin', 150, 0), link('p-host0', 0, 130),
                           link('p-host1', 0, 4)]
        delta = tb.delta()
        self.assertEqual(50, delta['origin'].tx_bytes)
        self.assertEqual(40, delta['host0'].rx_bytes)
        self.assertEqual(4, delta['host1'].rx_bytes)
        self.assertEqual(delta, tb.delta(since=before))

    def test_missing_link(self):
        tb = self.make().create()
        self.fake.links = [link('p-origin', 0, 0)]
        e = self.assertRaises(testbed.TestbedError, tb.snapshot)
        self.assertIn('p-host0', str(e))


class TestProcesses(TestbedTestCase):

    def test_argv(self):
        tb = self.make()
        self.assertEqual(['nsenter', '--net=/run/netns/fbt-host0'],
                         testbed.netns_argv('fbt-host0'))
        self.assertEqual(['nsenter', '--net=/run/netns/fbt-origin',
                          'qemu-img', 'info', '3'],
                         tb.argv('origin', 'qemu-img', 'info', 3))
        self.assertEqual(tb.argv(1, 'x'), tb.hosts[1].argv('x'))

    def test_execute_in(self):
        tb = self.make()
        ns_execute = tb.execute_in('host1')
        ns_execute('qemu-storage-daemon', '--daemonize', timeout=30)
        self.assertEqual(nsenter('fbt-host1') + ('qemu-storage-daemon',
                                                 '--daemonize'),
                         self.fake.calls[-1])
        self.assertEqual('fbt-host1', ns_execute.netns)

    def test_execute_failure_names_the_real_command(self):
        fake = FakeNetns(fail=lambda c: True)
        ns_execute = testbed.netns_execute('fbt-host0', fake)
        e = self.assertRaises(exception.CommandFailed, ns_execute,
                              'qemu-img', 'info', 'x')
        self.assertIn('qemu-img info (in network namespace fbt-host0)',
                      str(e))
        self.assertEqual(2, e.kwargs['code'])

    def test_check_exit_code_and_timeout_passed_through(self):
        base_execute = mock.Mock(return_value=('out', 'err'))
        ns_execute = testbed.netns_execute('n', base_execute)
        self.assertEqual(('out', 'err'),
                         ns_execute('true', check_exit_code=False,
                                    timeout=5))
        base_execute.assert_called_once_with(
            'nsenter', '--net=/run/netns/n', 'true', check_exit_code=False,
            timeout=5)

    def test_run_and_popen(self):
        with mock.patch.object(subprocess, 'run') as run, \
                mock.patch.object(subprocess, 'Popen') as popen:
            tb = self.make()
            tb.run('host0', ['ip', 'route'], capture_output=True)
            tb.popen('origin', ['python3', '-c', 'pass'])
        run.assert_called_once_with(
            ['nsenter', '--net=/run/netns/fbt-host0', 'ip', 'route'],
            capture_output=True)
        popen.assert_called_once_with(
            ['nsenter', '--net=/run/netns/fbt-origin', 'python3', '-c',
             'pass'])

    def test_shell_strings_refused(self):
        self.assertRaises(TypeError, testbed.run, 'n', 'ip route')
        self.assertRaises(TypeError, testbed.popen, 'n', b'ip route')
