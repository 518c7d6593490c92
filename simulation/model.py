"""A discrete-event model (simpy) of a boot storm.

One run (:func:`simulate`) boots ``vms_per_host`` VMs on each of ``hosts``
hosts from one image and returns the time until the last VM is booted and
the bytes the origin sent. What it models, and why that way:

* **Links** are processor-sharing servers (:mod:`simulation.ps`): every
  node (origin, hosts) has an uplink and a downlink of ``link_bps`` (the
  origin ``origin_bps``); a transfer is served on the sender's uplink and
  the receiver's downlink at once and ends when both are done; TCP flows
  through one bottleneck share it about fairly. Each request also pays
  ``latency`` seconds (round trip plus the server's handling) before its
  data flows. Bytes on the wire are payload x ``wire_overhead`` (Ethernet,
  IP and TCP headers per 1448-byte segment: 66/1448 = 4.56%).
* **Caches** (``fastboot``, ``virtman``): per host, one fetch per cluster
  (``cluster_bytes``): a VM read maps to clusters; clusters already cached
  cost nothing; clusters being fetched (by another VM of the host, or a
  child's read) are waited for, not fetched again (QEMU's copy-on-read
  serialises overlapping requests); the missing ones are fetched from the
  host's source in one request per contiguous run, as copy-on-read does.
  A host serving a child reads through its own cache first (the parent's
  copy-on-read fills as its children read), so a miss walks up the tree.
* **Tree**: the coordinator's k-ary tree (``fanout``): hosts join in order
  and take the shallowest free slot, so host ``i`` reads from the origin
  when ``i < fanout``, else from host ``(i - fanout) // fanout``. A parent
  failure (``fail_host`` at ``fail_at`` s) fails its in-flight requests;
  its children then read from their first alternate, the grandparent (the
  fifo quorum of sources), after ``failover_delay`` s, as the agent would
  re-parent them.
* **CPU**: a VM replays its boot trace (:mod:`simulation.traces`): CPU
  work, then a batch of reads, and so on. CPU is a processor-sharing
  server per host (``cores`` cores, each VM at most one core), or one for
  the whole machine (``shared_cpu``: the testbed, where every emulated
  host runs on the same 2 cores next to ``cpu_background`` other runnable
  threads). ``cpu_scale`` multiplies the trace's CPU seconds (e.g. to the
  CPU one boot took in a measured run).
* **Start times**: the runner issues the boots ``start_interval`` s apart
  (0: all at once, as ``fastboot demo`` and a batch do).

Alternatives in the same model:

``fastboot``   lazy per-host caches in the coordinator's tree.
``full_copy``  Nova's image cache: each host first downloads the whole
               image from the origin, then boots its VMs from local disk.
``shared``     every VM reads its own blocks from the shared store (a
               Ceph-like cluster of ``origin_bps``), no host cache.
``virtman``    VirtMan: a binary tree of host caches, where a host can read
               (and serve) only after attaching its parent's iSCSI export,
               ``attach_seconds`` per level of the tree.

Aggregation (``exact=False``): the VMs of a host start together and replay
the same trace, so they issue the same reads at the same time and all but
the first wait on its fetches. One process per host stands for them (a
CPU job of weight ``vms_per_host``), and trace steps with less than
``merge_cpu`` s of CPU are merged into the previous step. Without a
cache (``shared``) every VM reads for itself, so the aggregate then
fetches ``vms_per_host`` times the bytes in one transfer.
"""

import dataclasses

import simpy

from simulation import ps as ps_mod

ALTERNATIVES = ('fastboot', 'full_copy', 'shared', 'virtman')
#: Ethernet (14) + IPv4 (20) + TCP with timestamps (32) per 1448 bytes.
WIRE_OVERHEAD = 1 + 66 / 1448


@dataclasses.dataclass
class Config:
    hosts: int
    vms_per_host: int
    profile: object
    link_bps: float
    origin_bps: float = None
    fanout: int = 3
    alternative: str = 'fastboot'
    cluster_bytes: int = 65536
    latency: float = 0.0002
    cores: float = 16
    shared_cpu: bool = False
    cpu_background: float = 0.0
    cpu_scale: float = 1.0
    start_interval: float = 0.0
    fail_host: int = None
    fail_at: float = None
    failover_delay: float = 1.0
    attach_seconds: float = 3.0
    image_bytes: int = None
    exact: bool = True
    merge_cpu: float = 0.05
    #: Aggregated runs fetch a merged step in pieces of at most this many
    #: bytes, one after the other: a parent forwards a piece only once it
    #: has it all (copy-on-read), so pieces keep the tree's pipeline.
    agg_fetch_bytes: int = 1048576
    wire_overhead: float = WIRE_OVERHEAD
    #: Bytes per second the origin sends to each host besides data
    #: (the agents' heartbeats to a coordinator beside the origin).
    control_bps_per_host: float = 0.0

    def validate(self):
        if self.alternative not in ALTERNATIVES:
            raise ValueError('alternative must be one of %s' %
                             ', '.join(ALTERNATIVES))
        for name in ('hosts', 'vms_per_host', 'fanout', 'cluster_bytes'):
            if getattr(self, name) < 1:
                raise ValueError('%s must be at least 1' % name)
        if self.link_bps <= 0 or (self.origin_bps or 1) <= 0:
            raise ValueError('link rates must be positive')
        if self.fail_host is not None and not (
                0 <= self.fail_host < self.hosts):
            raise ValueError('fail_host must be a host index')


@dataclasses.dataclass
class Result:
    predicted_seconds: float
    origin_egress_bytes: float
    boot_seconds: list
    host_ingress_bytes: list
    depth: int


def tree_parent(i, fanout):
    """Parent of host ``i`` in the coordinator's k-ary tree (None: origin)."""
    return None if i < fanout else (i - fanout) // fanout


def tree_depth(hosts, fanout):
    depth, i = 0, hosts - 1
    while i is not None:
        depth += 1
        i = tree_parent(i, fanout)
    return depth


class ParentFailed(Exception):
    pass


class Node:
    def __init__(self, sim, name, up_bps, down_bps):
        self.sim = sim
        self.name = name
        self.up = ps_mod.PS(sim.env, up_bps / 8.0)
        self.down = ps_mod.PS(sim.env, down_bps / 8.0)
        self.received = 0.0


class Host(Node):
    def __init__(self, sim, index, cfg):
        super().__init__(sim, 'host%d' % index, cfg.link_bps, cfg.link_bps)
        self.index = index
        self.cache = {}       # cluster -> True (present) or Event (fetching)
        self.source = None    # Node to read misses from
        self.alive = True
        self.ready = sim.env.event()   # attached (virtman); else at once
        self.inflight = set()


class Storm:
    def __init__(self, cfg):
        cfg.validate()
        self.cfg = cfg
        self.env = simpy.Environment()
        env = self.env
        origin_bps = cfg.origin_bps or cfg.link_bps
        self.origin = Node(self, 'origin', origin_bps, origin_bps)
        self.hosts = [Host(self, i, cfg) for i in range(cfg.hosts)]
        self.cpu = None
        if cfg.shared_cpu:
            self.cpu = ps_mod.PS(env, cfg.cores, per_unit_cap=1.0,
                                 background=cfg.cpu_background)
        else:
            for h in self.hosts:
                h.cpu = ps_mod.PS(env, cfg.cores, per_unit_cap=1.0,
                                  background=cfg.cpu_background)
        self.profile = cfg.profile
        if not cfg.exact:
            self.profile = self.profile.merged(cfg.merge_cpu)
        self.boot_times = []
        fanout = 2 if cfg.alternative == 'virtman' else cfg.fanout
        self.fanout = fanout
        for h in self.hosts:
            p = tree_parent(h.index, fanout)
            h.parent = p
            h.source = self.origin if p is None else self.hosts[p]
            if cfg.alternative == 'virtman':
                depth = tree_depth(h.index + 1, fanout)
                env.process(self._attach(h, depth))
            else:
                h.ready.succeed()

    # -- data path -------------------------------------------------------

    def transfer(self, src, dst, nbytes):
        """Move ``nbytes`` of payload from ``src`` to ``dst``."""
        cfg = self.cfg
        yield self.env.timeout(cfg.latency)
        wire = nbytes * cfg.wire_overhead
        yield self.env.all_of([src.up.serve(wire), dst.down.serve(wire)])
        dst.received += wire

    def _attach(self, host, depth):
        yield self.env.timeout(depth * self.cfg.attach_seconds)
        host.ready.succeed()

    def host_read(self, host, clusters):
        """Make ``clusters`` (a sorted list) present in ``host``'s cache."""
        if not host.alive:
            raise ParentFailed(host.name)
        wait = []
        missing = []
        for c in clusters:
            state = host.cache.get(c)
            if state is True:
                continue
            if state is None:
                missing.append(c)
            else:
                wait.append(state)
        runs = []
        for c in missing:
            if runs and runs[-1][-1] == c - 1:
                runs[-1].append(c)
            else:
                runs.append([c])
        for run in runs:
            ev = self.env.event()
            for c in run:
                host.cache[c] = ev
            self.env.process(self._fetch(host, run, ev))
            wait.append(ev)
        if wait:
            yield self.env.all_of(wait)
        if not host.alive:
            raise ParentFailed(host.name)

    def _fetch(self, host, run, ev):
        """Fetch ``run`` of clusters into ``host``'s cache from its source.

        Fails over to the next source when a parent dies.
        """
        yield host.ready
        nbytes = len(run) * self.cfg.cluster_bytes
        while True:
            src = host.source
            try:
                if src is not self.origin:
                    yield src.ready
                    yield from self.host_read(src, run)
                    if not src.alive:
                        raise ParentFailed(src.name)
                yield from self.transfer(src, host, nbytes)
                if src is not self.origin and not src.alive:
                    raise ParentFailed(src.name)
                break
            except ParentFailed:
                if not host.alive:
                    return
                yield self.env.timeout(self.cfg.failover_delay)
                if host.source is src:
                    host.source = self._alternate(host)
        if not host.alive:
            return
        for c in run:
            host.cache[c] = True
        if not ev.triggered:
            ev.succeed()

    def _alternate(self, host):
        """The first live source above ``host``'s dead parent."""
        p = host.parent
        while p is not None and not self.hosts[p].alive:
            p = self.hosts[p].parent
        host.parent = p
        return self.origin if p is None else self.hosts[p]

    # -- VMs -------------------------------------------------------------

    def _cpu(self, host):
        return self.cpu if self.cpu is not None else host.cpu

    def vm(self, host, start, weight):
        cfg = self.cfg
        env = self.env
        yield env.timeout(start)
        t0 = env.now
        cpu = self._cpu(host)
        c = cfg.cluster_bytes
        for step in self.profile.steps:
            if step.cpu > 0:
                yield cpu.serve(step.cpu * cfg.cpu_scale, weight)
            if cfg.alternative == 'full_copy':
                continue
            if cfg.alternative == 'shared':
                # No cache: every VM reads its own bytes from the store,
                # one request per read (aggregated: per piece).
                if cfg.exact:
                    sizes = [n for _o, n in step.reads]
                else:
                    total = sum(n for _o, n in step.reads)
                    sizes = [min(cfg.agg_fetch_bytes, total - o)
                             for o in range(0, total, cfg.agg_fetch_bytes)]
                for n in sizes:
                    yield from self.transfer(self.origin, host, n * weight)
                continue
            try:
                if cfg.exact:
                    # The reads of a batch were issued together.
                    yield env.all_of([env.process(self.host_read(
                        host, list(range(off // c, (off + n - 1) // c + 1))))
                        for off, n in step.reads])
                else:
                    for piece in self._pieces(step.reads):
                        yield from self.host_read(host, piece)
            except ParentFailed:
                return   # its own host died: so did the VM
        if self.profile.tail_cpu > 0:
            yield cpu.serve(self.profile.tail_cpu * cfg.cpu_scale, weight)
        if not host.alive:
            return
        for _ in range(int(weight)):
            self.boot_times.append((host.index, env.now - t0, env.now))

    def _pieces(self, reads):
        c = self.cfg.cluster_bytes
        per = max(self.cfg.agg_fetch_bytes // c, 1)
        seen = set()
        order = []
        for off, n in reads:
            for k in range(off // c, (off + n - 1) // c + 1):
                if k not in seen:
                    seen.add(k)
                    order.append(k)
        order.sort()
        return [order[i:i + per] for i in range(0, len(order), per)]

    def host_boots(self, host, first):
        cfg = self.cfg
        if cfg.alternative == 'full_copy':
            size = cfg.image_bytes or self.profile.image_bytes
            yield from self.transfer(self.origin, host, size)
        if cfg.exact or cfg.start_interval > 0:
            for v in range(cfg.vms_per_host):
                self.env.process(self.vm(
                    host, max(first + v * cfg.start_interval -
                              self.env.now, 0), 1))
        else:
            self.env.process(self.vm(host, max(first - self.env.now, 0),
                                     cfg.vms_per_host))

    def _fail(self):
        yield self.env.timeout(self.cfg.fail_at)
        victim = self.hosts[self.cfg.fail_host]
        victim.alive = False
        # Its own VMs die with it; its cache is gone; whoever waits on one
        # of its fetches learns it now (and fails over).
        pending = [ev for ev in victim.cache.values() if ev is not True]
        victim.cache.clear()
        for ev in pending:
            if not ev.triggered:
                ev.succeed()

    def run(self):
        cfg = self.cfg
        for h in self.hosts:
            # The runner issues the starts host after host, VMs of a host
            # together (a mass boot is grouped per host).
            first = h.index * cfg.vms_per_host * cfg.start_interval
            self.env.process(self.host_boots(h, first))
        if cfg.fail_host is not None and cfg.fail_at is not None:
            self.env.process(self._fail())
        self.env.run()
        done = [b for b in self.boot_times
                if cfg.fail_host is None or b[0] != cfg.fail_host or
                cfg.fail_at is None or b[2] <= cfg.fail_at]
        end = max(b[2] for b in done) if done else 0.0
        control = cfg.control_bps_per_host * cfg.hosts * end
        return Result(
            predicted_seconds=end,
            origin_egress_bytes=self.origin.up.total + control,
            boot_seconds=sorted(b[1] for b in done),
            host_ingress_bytes=[h.received for h in self.hosts],
            depth=tree_depth(cfg.hosts, self.fanout))


def simulate(cfg):
    """Run one storm; returns :class:`Result`."""
    return Storm(cfg).run()
