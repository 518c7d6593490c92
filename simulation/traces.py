"""Boot traces: load them, and turn them into what a VM replays.

A trace (recorded by :mod:`simulation.trace`) is gzip'd JSON with the
guest's requests in issue order: ``[op, cpu, done_cpu, offset, length]``,
``cpu`` being the guest's CPU seconds when it issued the request, and
``boot_cpu_seconds`` the CPU seconds at which the boot was done.

A VM replays it as *steps*: CPU work, then a batch of reads issued
together (the guest issued them before the earlier ones completed), then
CPU work again... Writes go to the VM's own overlay on its host and move
nothing over the network, so they only end a batch.
"""

import dataclasses
import gzip
import json
import os

TRACE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'traces')


@dataclasses.dataclass(frozen=True)
class Step:
    #: CPU seconds (of one core) before the reads are issued.
    cpu: float
    #: ``(offset, length)`` of the reads issued together.
    reads: tuple


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    steps: tuple
    #: CPU seconds after the last read until the boot is done.
    tail_cpu: float
    image_bytes: int

    @property
    def cpu_seconds(self):
        return sum(s.cpu for s in self.steps) + self.tail_cpu

    @property
    def read_bytes(self):
        return sum(n for s in self.steps for _o, n in s.reads)

    def clusters(self, cluster):
        """The distinct clusters of ``cluster`` bytes the boot reads."""
        out = set()
        for s in self.steps:
            for off, n in s.reads:
                out.update(range(off // cluster, (off + n - 1) // cluster + 1))
        return out

    def working_set(self, cluster):
        return len(self.clusters(cluster)) * cluster

    def merged(self, min_cpu):
        """Fewer, bigger steps: a step whose CPU work is below ``min_cpu``
        joins the previous one (its reads issued with the previous reads).

        This is the aggregation the large runs use: per-read events cost
        time, and a read that waits ``min_cpu`` less changes the boot by
        at most that much per merged step.
        """
        if min_cpu <= 0:
            return self
        steps = []
        for s in self.steps:
            if steps and s.cpu < min_cpu:
                prev = steps[-1]
                steps[-1] = Step(prev.cpu + s.cpu, prev.reads + s.reads)
            else:
                steps.append(s)
        return dataclasses.replace(self, steps=tuple(steps))


def from_requests(name, requests, boot_cpu, image_bytes):
    """Build a :class:`Profile` from trace rows (see the module doc)."""
    steps = []
    batch = []
    batch_done = 0.0
    last_done = 0.0
    gap = 0.0
    for op, cpu, done, off, n in requests:
        if batch and cpu >= batch_done:
            steps.append(Step(max(gap, 0.0), tuple(batch)))
            batch = []
        if not batch:
            gap = cpu - last_done if op == 'R' else 0.0
            if op == 'R':
                batch_done = done
        if op != 'R':
            continue
        if not batch:
            gap = cpu - last_done
        batch.append((off, n))
        batch_done = max(batch_done, done)
        last_done = max(last_done, done)
    if batch:
        steps.append(Step(max(gap, 0.0), tuple(batch)))
    return Profile(name=name, steps=tuple(steps),
                   tail_cpu=max(boot_cpu - last_done, 0.0),
                   image_bytes=image_bytes)


def load(name_or_path):
    """Load ``traces/<name>.json.gz`` (or a path) as a :class:`Profile`."""
    path = name_or_path
    if not os.path.exists(path):
        path = os.path.join(TRACE_DIR, name_or_path + '.json.gz')
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        data = json.load(f)
    if data.get('format') != 1:
        raise ValueError('%s: unknown trace format %r' % (
            path, data.get('format')))
    name = os.path.basename(path).split('.')[0]
    return from_requests(name, data['requests'], data['boot_cpu_seconds'],
                         data['image_bytes'])


def synthetic(name, read_bytes, cpu_seconds, image_bytes, request=131072):
    """A boot that reads ``read_bytes`` in order, then computes.

    For the exact unit-test cases and for what-ifs without a trace.
    """
    reads = tuple((off, min(request, read_bytes - off))
                  for off in range(0, read_bytes, request))
    return Profile(name=name, steps=tuple(Step(0.0, (r,)) for r in reads),
                   tail_cpu=cpu_seconds, image_bytes=image_bytes)
