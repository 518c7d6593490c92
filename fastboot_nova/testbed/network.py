"""Network namespaces joined by veth: an origin plus H emulated hosts.

Topology of a testbed with prefix ``P``::

    P-origin        P-host0        P-host1   ...     (one netns per node)
      eth0            eth0           eth0            10.250.X.1, .2, .3 ...
       |               |              |
    p-origin        p-host0        p-host1           (veth peers)
       +---------------+--------------+---- br0      in netns P-sw

Why this shape:

* Every device lives in a namespace of the testbed, none in the root
  namespace, so two testbeds (parallel test runs, a crashed run's
  leftovers) never collide on an interface name, and deleting the
  namespaces removes every veth and the bridge with them.
* The subnet exists only inside the testbed. The switch namespace has no
  address, the nodes have only the connected subnet route (no default
  route, no NAT, no forwarding), so nothing a test sends can leave the
  testbed, and a connect to anything else fails at once with
  "Network is unreachable" instead of sending a packet.
* IPv6 is off on the testbed's links (``default.disable_ipv6`` is set in
  each namespace before its links exist) and bridge multicast snooping is
  off, so an idle link moves exactly 0 bytes and the byte counters measure
  only what a test sent. Loopback keeps ``::1``.
* Processes are started with ``nsenter --net=/run/netns/NAME``, not
  ``ip netns exec``: the latter also makes a new mount namespace, which
  hides FUSE mounts and remounts /sys. Unix sockets are path based, so a
  daemon started in a host namespace is still driven over QMP from the
  root namespace.

Every command is an argv list run through an injectable ``execute`` (the
signature of :func:`fastboot_nova.executor.execute`), which is how the unit
tests record them.
"""

import dataclasses
import ipaddress
import itertools
import json
import logging
import re
import secrets
import zlib

from fastboot_nova import exception
from fastboot_nova import executor
from fastboot_nova.i18n import _
# The namespace helpers live in fastboot_nova.testbed.netns; the public
# ones stay importable from here.
from fastboot_nova.testbed.netns import _list_namespaces
from fastboot_nova.testbed.netns import CAP_NET_ADMIN  # noqa: F401
from fastboot_nova.testbed.netns import CAP_SYS_ADMIN  # noqa: F401
from fastboot_nova.testbed.netns import check_support
from fastboot_nova.testbed.netns import cleanup_prefix
from fastboot_nova.testbed.netns import COMMAND_TIMEOUT
from fastboot_nova.testbed.netns import KILL_GRACE  # noqa: F401
from fastboot_nova.testbed.netns import netns_argv
from fastboot_nova.testbed.netns import NETNS_DIR  # noqa: F401
from fastboot_nova.testbed.netns import netns_execute
from fastboot_nova.testbed.netns import popen
from fastboot_nova.testbed.netns import run
from fastboot_nova.testbed.netns import SWITCH
from fastboot_nova.testbed.netns import TestbedError

LOG = logging.getLogger(__name__)

ORIGIN = 'origin'
HOST = 'host%d'
BRIDGE = 'br0'
NODE_IFNAME = 'eth0'
PORT = 'p-%s'
MAX_HOSTS = 250
# Short, so that every namespace name stays readable, and without '-', so
# that "<prefix>-" never matches the namespaces of a longer prefix.
PREFIX_RE = re.compile(r'^[a-z][a-z0-9]{0,11}\Z')
# tbf queue bound: enough for TCP to reach the rate, small enough that a
# rate-limited link does not add seconds of queueing delay.
TBF_LATENCY = '100ms'

_RATE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*\Z')
# tc(8) units: "bit" units are bits per second, "bps" units bytes per
# second; k/m/g/t are powers of 1000, ki/mi/gi/ti powers of 1024.
_RATE_UNITS = {
    '': 1, 'bit': 1, 'bps': 8,
    'kbit': 10 ** 3, 'mbit': 10 ** 6, 'gbit': 10 ** 9, 'tbit': 10 ** 12,
    'kibit': 2 ** 10, 'mibit': 2 ** 20, 'gibit': 2 ** 30, 'tibit': 2 ** 40,
    'kbps': 8 * 10 ** 3, 'mbps': 8 * 10 ** 6, 'gbps': 8 * 10 ** 9,
    'tbps': 8 * 10 ** 12,
    'kibps': 8 * 2 ** 10, 'mibps': 8 * 2 ** 20, 'gibps': 8 * 2 ** 30,
    'tibps': 8 * 2 ** 40,
}


def parse_rate(rate):
    """Bits per second from ``rate``: an int, or a tc rate like '100mbit'.

    :raises ValueError: for anything else, or a rate below 8 kbit/s.
    """
    if isinstance(rate, bool):
        raise ValueError('invalid rate %r' % (rate,))
    if isinstance(rate, int):
        bps = rate
    else:
        m = _RATE_RE.match(str(rate).lower())
        if not m or m.group(2) not in _RATE_UNITS:
            raise ValueError(
                'invalid rate %r: use bits per second or a tc rate such as '
                '"100mbit", "1gbit", "500kbit" or "10mbps" (bytes)' % (
                    rate,))
        bps = int(float(m.group(1)) * _RATE_UNITS[m.group(2)])
    if bps < 8000:
        raise ValueError('rate %r is below 8kbit' % (rate,))
    return bps


def tbf_burst(bps):
    """Bucket size in bytes for a tbf at ``bps`` bits/s.

    10 ms worth of data, at least 16 KiB (ten full frames): big enough to
    reach the rate without timer trouble, small enough that a 1 MiB
    transfer is not mostly burst. GSO packets bigger than the bucket are
    segmented by tbf itself.
    """
    return max(bps // 8 // 100, 16384)


@dataclasses.dataclass(frozen=True)
class Node:
    """One emulated machine: the origin or a host.

    :ivar name: ``origin`` or ``host<i>``.
    :ivar netns: its network namespace.
    :ivar address: its IPv4 address on the test subnet.
    :ivar port: the switch side of its veth (in the switch namespace).
    :ivar ifname: its own side of the veth (in ``netns``).
    """

    name: str
    netns: str
    address: str
    port: str
    ifname: str = NODE_IFNAME

    def argv(self, *argv):
        """``argv`` prefixed to run inside this node's namespace."""
        return netns_argv(self.netns) + [str(a) for a in argv]


@dataclasses.dataclass(frozen=True)
class LinkCounters:
    """Bytes and packets on a node's link, seen from the node.

    ``rx_bytes`` is what the node received (its ingress), ``tx_bytes`` what
    it sent (its egress). Counts are of frames as the veth saw them:
    Ethernet + IP + TCP headers included; with GSO the headers of a 64 KiB
    super-packet count once, so TCP payload is within ~0.2 % of rx_bytes.
    """

    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0

    def __sub__(self, other):
        return LinkCounters(*(a - b for a, b in zip(
            dataclasses.astuple(self), dataclasses.astuple(other),
            strict=True)))


class Testbed:
    """An origin namespace plus ``hosts`` host namespaces on one bridge.

    Use it as a context manager, or call :meth:`create` and
    :meth:`cleanup`::

        with Testbed(3, rate='100mbit') as tb:
            server = tb.popen('origin', ['python3', '-m', 'http.server',
                                         '--bind', tb.origin.address])
            tb.run('host0', ['curl', 'http://%s:8000/' % tb.origin.address])
            print(tb.delta()['origin'].tx_bytes)

    :param hosts: number of host namespaces (1 to 250, and the subnet must
        have room for them and the origin).
    :param prefix: names start with ``<prefix>-``; a short random
        ``fb<6 hex>`` by default. Leftovers of a previous testbed with the
        same prefix are removed by :meth:`create`.
    :param subnet: the IPv4 test subnet, e.g. '10.250.7.0/24'. By default
        10.250.X.0/24 with X derived from the prefix. It is only ever
        configured inside the testbed, so two testbeds may share one.
    :param rate: rate limit of each host link, both directions (an int in
        bits/s or a tc rate such as '100mbit'); None for no limit.
    :param origin_rate: the same for the origin's link.
    :param execute: command runner, :func:`fastboot_nova.executor.execute`
        by default.
    """

    def __init__(self, hosts, prefix=None, subnet=None, rate=None,
                 origin_rate=None, execute=None):
        if isinstance(hosts, bool) or not isinstance(hosts, int) or not (
                1 <= hosts <= MAX_HOSTS):
            raise ValueError('hosts must be an integer from 1 to %d, not %r'
                             % (MAX_HOSTS, hosts))
        if prefix is None:
            prefix = 'fb' + secrets.token_hex(3)
        if not PREFIX_RE.match(prefix):
            raise ValueError(
                'invalid testbed prefix %r: a lowercase letter, then up to '
                '11 lowercase letters or digits' % (prefix,))
        self.prefix = prefix
        if subnet is None:
            subnet = '10.250.%d.0/24' % (zlib.crc32(prefix.encode()) % 256)
        self.subnet = ipaddress.IPv4Network(subnet, strict=True)
        if not self.subnet.is_private:
            # Not a safety need (nothing routes out of the testbed) but a
            # public range would make a test's addresses look real.
            raise ValueError('subnet %s is not a private range' % subnet)
        addresses = list(itertools.islice(self.subnet.hosts(), hosts + 1))
        if len(addresses) < hosts + 1:
            raise ValueError('subnet %s has no room for an origin and %d '
                             'hosts' % (self.subnet, hosts))
        self.rate = None if rate is None else parse_rate(rate)
        self.origin_rate = (None if origin_rate is None
                            else parse_rate(origin_rate))
        self.execute = execute or executor.execute
        self.switch_netns = '%s-%s' % (prefix, SWITCH)

        def node(name, address):
            return Node(name=name, netns='%s-%s' % (prefix, name),
                        address=str(address), port=PORT % name)

        self.origin = node(ORIGIN, addresses[0])
        self.hosts = [node(HOST % i, addresses[i + 1])
                      for i in range(hosts)]
        self.nodes = {n.name: n for n in [self.origin] + self.hosts}
        # The limit of each node's link in bits/s, None for none.
        self.rates = {ORIGIN: self.origin_rate}
        self.rates.update((n.name, self.rate) for n in self.hosts)
        self.created = False
        self._baseline = {}

    def __repr__(self):
        return '<Testbed %s: origin + %d hosts on %s>' % (
            self.prefix, len(self.hosts), self.subnet)

    # -- names ------------------------------------------------------------

    def node(self, which):
        """The Node for a Node, a name ('origin', 'host0') or an index."""
        if isinstance(which, Node):
            return which
        if isinstance(which, int) and not isinstance(which, bool):
            return self.hosts[which]
        try:
            return self.nodes[which]
        except KeyError:
            raise KeyError('no node %r in testbed %s (nodes: %s)' % (
                which, self.prefix, ', '.join(self.nodes))) from None

    @property
    def namespaces(self):
        """All namespace names of this testbed, the switch last."""
        return [n.netns for n in self.nodes.values()] + [self.switch_netns]

    def _netns_of(self, which):
        if which == SWITCH:
            return self.switch_netns
        return self.node(which).netns

    # -- life cycle ---------------------------------------------------------

    def create(self):
        """Build the testbed; all or nothing. Returns self.

        :raises TestbedError: naming the step that failed; whatever was
            built by then has been removed.
        """
        check_support(self.prefix, need_tc=bool(self.rate or
                                                self.origin_rate))
        existing = _list_namespaces(self.execute, self.prefix)
        if any(ns.startswith(self.prefix + '-') for ns in existing):
            LOG.warning('Removing leftovers of a previous testbed %s',
                        self.prefix)
            cleanup_prefix(self.prefix, self.execute, namespaces=existing)
        LOG.info('Creating %r', self)
        try:
            self._build()
            self._baseline = self.snapshot()
        except BaseException as e:
            try:
                cleanup_prefix(self.prefix, self.execute)
            except Exception:
                LOG.exception('Could not remove the half-built testbed %s',
                              self.prefix)
            if isinstance(e, exception.CommandFailed):
                raise TestbedError(name=self.prefix, reason=str(e)) from e
            raise
        self.created = True
        return self

    def _cmd(self, step, *cmd):
        try:
            return self.execute(*cmd, timeout=COMMAND_TIMEOUT)
        except exception.CommandFailed as e:
            raise exception.CommandFailed(
                cmd='%s (%s)' % (' '.join(cmd), step),
                code=e.kwargs.get('code'),
                stderr=e.kwargs.get('stderr')) from e

    def _add_namespace(self, netns):
        self._cmd('create namespace', 'ip', 'netns', 'add', netns)
        # Before any link exists, so the links get no IPv6 (no DAD, MLD or
        # router solicitations on an idle link); lo keeps ::1.
        self._cmd('disable IPv6 on new links',
                  *netns_argv(netns), 'sysctl', '-q', '-w',
                  'net.ipv6.conf.default.disable_ipv6=1')

    def _build(self):
        sw = self.switch_netns
        self._add_namespace(sw)
        self._cmd('create the bridge', 'ip', '-n', sw, 'link', 'add',
                  BRIDGE, 'type', 'bridge', 'mcast_snooping', '0')
        self._cmd('start the bridge', 'ip', '-n', sw, 'link', 'set', 'dev',
                  BRIDGE, 'up')
        for node in self.nodes.values():
            self._add_namespace(node.netns)
            # Both ends are created in their namespaces: no device ever
            # appears in the root namespace, even for a moment.
            self._cmd('create the link of %s' % node.name,
                      'ip', '-n', sw, 'link', 'add', node.port, 'type',
                      'veth', 'peer', 'name', node.ifname, 'netns',
                      node.netns)
            self._cmd('plug %s into the bridge' % node.name,
                      'ip', '-n', sw, 'link', 'set', 'dev', node.port,
                      'master', BRIDGE, 'up')
            self._cmd('start loopback of %s' % node.name,
                      'ip', '-n', node.netns, 'link', 'set', 'dev', 'lo',
                      'up')
            self._cmd('address %s' % node.name,
                      'ip', '-n', node.netns, 'addr', 'add',
                      '%s/%d' % (node.address, self.subnet.prefixlen),
                      'dev', node.ifname)
            self._cmd('start the link of %s' % node.name,
                      'ip', '-n', node.netns, 'link', 'set', 'dev',
                      node.ifname, 'up')
            if self.rates[node.name]:
                self._set_rate(node, self.rates[node.name])

    def _set_rate(self, node, bps):
        # A qdisc shapes only what leaves a device: the node's egress on its
        # own end, its ingress on the switch end of the same veth.
        for netns, dev, way in ((self.switch_netns, node.port, 'ingress'),
                                (node.netns, node.ifname, 'egress')):
            if bps is None:
                self._cmd('remove the %s limit of %s' % (way, node.name),
                          'tc', '-n', netns, 'qdisc', 'del', 'dev', dev,
                          'root')
            else:
                self._cmd('limit the %s of %s' % (way, node.name),
                          'tc', '-n', netns, 'qdisc', 'replace', 'dev', dev,
                          'root', 'tbf', 'rate', '%dbit' % bps, 'burst',
                          str(tbf_burst(bps)), 'latency', TBF_LATENCY)
        self.rates[node.name] = bps

    def set_rate(self, which, rate):
        """Change, or with None remove, the limit of one node's link.

        Both directions, on a running testbed.
        """
        node = self.node(which)
        bps = None if rate is None else parse_rate(rate)
        if bps is None and self.rates[node.name] is None:
            return  # tc refuses to delete the default qdisc
        try:
            self._set_rate(node, bps)
        except exception.CommandFailed as e:
            raise TestbedError(name=self.prefix, reason=str(e)) from e

    def cleanup(self):
        """Remove this testbed with the processes in it.

        Also removes leftovers of an earlier testbed with the same prefix.
        Safe to call twice. Returns the namespaces removed.
        """
        removed = cleanup_prefix(self.prefix, self.execute)
        self.created = False
        return removed

    def __enter__(self):
        if not self.created:
            self.create()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # -- processes ----------------------------------------------------------

    def argv(self, which, *argv):
        """``argv`` prefixed to run in a node's namespace."""
        return self.node(which).argv(*argv)

    def run(self, which, argv, **kwargs):
        """subprocess.run of ``argv`` in a node's namespace.

        ``which`` is a node, or 'sw' for the switch namespace (to look at
        the bridge).
        """
        return run(self._netns_of(which), argv, **kwargs)

    def popen(self, which, argv, **kwargs):
        """subprocess.Popen of ``argv`` in a node's namespace."""
        return popen(self._netns_of(which), argv, **kwargs)

    def execute_in(self, which):
        """An ``execute`` (executor.execute signature) for a node.

        E.g. ``QemuEngine(conf, state_path=..., execute=tb.execute_in(1))``.
        """
        return netns_execute(self._netns_of(which), self.execute)

    # -- byte counters ------------------------------------------------------

    def snapshot(self):
        """Current counters of every node's link: {node name:
        LinkCounters}, seen from the node (rx = its ingress).

        Read from the switch ends in one ``ip -s -j link`` call (sysfs
        would show the root namespace's devices, not the testbed's). The
        switch end sends what the node receives, hence the swap.
        """
        out, _err = self._cmd('read the link counters', 'ip', '-n',
                              self.switch_netns, '-s', '-j', 'link', 'show')
        by_port = {}
        for link in json.loads(out or '[]'):
            stats = link.get('stats64') or link.get('stats') or {}
            rx, tx = stats.get('rx', {}), stats.get('tx', {})
            by_port[link.get('ifname')] = LinkCounters(
                rx_bytes=tx.get('bytes', 0), tx_bytes=rx.get('bytes', 0),
                rx_packets=tx.get('packets', 0),
                tx_packets=rx.get('packets', 0))
        missing = [n.port for n in self.nodes.values()
                   if n.port not in by_port]
        if missing:
            raise TestbedError(name=self.prefix,
                               reason=_('links %s are gone') % missing)
        return {n.name: by_port[n.port] for n in self.nodes.values()}

    def reset(self):
        """Make the current counters the zero of :meth:`delta`."""
        self._baseline = self.snapshot()
        return self._baseline

    def delta(self, since=None):
        """Counters moved since ``since`` (a :meth:`snapshot`).

        By default since the last :meth:`reset`, or the creation.
        """
        base = self._baseline if since is None else since
        now = self.snapshot()
        return {name: c - base.get(name, LinkCounters())
                for name, c in now.items()}
