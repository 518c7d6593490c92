"""Steady-state I/O of a VM disk: ``python -m gate.bench.steady``.

A fastboot VM reads through its host cache for its whole life, so its
disk must be as fast as the disk a user would otherwise have: a qcow2
overlay on a local raw base file, as Nova's image cache gives. This
benchmark measures, in one run and interleaved (every repetition runs
every variant of a cell back to back, in rotating order):

``baseline``
    a qcow2 overlay on the local raw image file;
``nbd``
    a fastboot VM overlay on a complete (prefetched) cache reached through
    qemu-storage-daemon's NBD export, copy-on-read filter on the path
    (``direct_complete_cache = false``: the path of every VM before);
``direct``
    a fastboot VM overlay created after prefetch sealed the cache
    (``direct_complete_cache = true``, the default): the overlay's backing
    is the cache file itself;
``cold``
    a fastboot VM overlay on an empty cache: the first pass, copy-on-read
    from the origin (here a local raw file: the ratio is the price of the
    cache, not of a network).

Each cell is ``qemu-img bench`` on a fresh overlay with ``-t none -i
native`` (Nova's default cache mode): sequential or strided pseudo-random
reads or writes (a stride coprime with the number of blocks visits every
block once, defeating read-ahead), 4 KiB / 64 KiB / 1 MiB requests, queue
depth 1 and 32. Figures are medians; ratios are baseline seconds over
variant seconds (1.0 = as fast as the baseline, higher is faster). The
daemon's CPU seconds (from /proc) are counted per GiB the VM read or
wrote. ``--tls`` adds the
TLS-PSK vs plain NBD cost between two hosts (:mod:`gate.bench.tls`).
"""

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LOG = logging.getLogger('gate.bench.steady')

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
SIZES = (4 * KiB, 64 * KiB, MiB)
DEPTHS = (1, 32)
PATTERNS = ('seq', 'rand')
OPS = ('read', 'write')
VARIANTS = ('baseline', 'nbd', 'direct', 'cold')
PORT_MIN = 33100
PORT_MAX = 33199
_COMPLETED = re.compile(r'Run completed in ([0-9.]+) seconds')


def _conf(direct):
    from oslo_config import cfg

    from fastboot_nova.conf import fastboot as fastboot_conf
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    fastboot_conf.set_overrides(conf, export_port_min=PORT_MIN,
                                export_port_max=PORT_MAX,
                                direct_complete_cache=direct)
    return conf


def stride_blocks(blocks):
    """A stride, in blocks, that visits every one of ``blocks`` once.

    Coprime with ``blocks`` and far from 1 so consecutive requests are
    never neighbours; ``qemu-img bench`` wraps offsets at the image end.
    """
    if blocks < 3:
        return 1
    step = max(2, int(blocks * 0.618))
    while math.gcd(step, blocks) != 1:
        step += 1
    return step


def bench_args(path, op, pattern, size, depth, count, image_bytes):
    args = ['qemu-img', 'bench', '-f', 'qcow2', '-t', 'none',
            '-i', 'native', '-d', str(depth), '-s', str(size),
            '-c', str(count)]
    if op == 'write':
        args.append('-w')
    if pattern == 'rand':
        args += ['-S', str(size * stride_blocks(image_bytes // size))]
    return args + [path]


def run_bench_cmd(args):
    out = subprocess.run(args, check=True, capture_output=True,
                         text=True).stdout
    match = _COMPLETED.search(out)
    if not match:
        raise RuntimeError('no timing in qemu-img bench output: %r' % out)
    return float(match.group(1))


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far."""
    if pid is None:
        return 0.0
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def cells(quick):
    sizes = (4 * KiB, MiB) if quick else SIZES
    for op, pattern, size, depth in itertools.product(OPS, PATTERNS, sizes,
                                                       DEPTHS):
        yield {'op': op, 'pattern': pattern, 'size': size, 'depth': depth}


def cell_name(cell):
    size = cell['size']
    label = '%dK' % (size // KiB) if size < MiB else '%dM' % (size // MiB)
    return '%s %s %s QD%d' % (cell['pattern'], cell['op'], label,
                              cell['depth'])


def cell_count(cell, image_bytes, cap_bytes):
    """Requests of a cell: the whole image, at most ``cap_bytes``.

    4 KiB cells get a quarter of the cap: a small random write allocates
    a cluster and copies the rest of it, thousands of times.
    """
    if cell['size'] <= 4 * KiB:
        cap_bytes //= 4
    return max(1, min(image_bytes, cap_bytes) // cell['size'])


class Setup:
    """The image, its two engines and the overlays of one run."""

    def __init__(self, work, image_mib):
        from fastboot_nova import storage
        self.work = work
        self.image = os.path.join(work, 'image.raw')
        self.image_bytes = image_mib * MiB
        with open(self.image, 'wb') as f:
            for _ in range(image_mib):
                f.write(os.urandom(MiB))
        self.engines = {}
        for variant, direct in (('nbd', False), ('direct', True),
                                ('cold', False)):
            state = os.path.join(work, variant)
            os.mkdir(state)
            self.engines[variant] = storage.get_engine(
                _conf(direct), state_path=state)
        self.serial = itertools.count()
        self.use_image(self.image, 'img')

    def use_image(self, path, name='guest'):
        """Make ``path`` the image of the next overlays, warm (prefetched)."""
        self.image, self.image_name = path, name
        for variant in ('nbd', 'direct'):
            self.engines[variant].add_image(name, path)
            self.engines[variant].prefetch(name)

    def overlay(self, variant):
        """A fresh overlay of ``variant``; returns (path, cleanup)."""
        n = next(self.serial)
        if variant == 'baseline':
            path = os.path.join(self.work, 'base-%d.qcow2' % n)
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2',
                            '-b', self.image, '-F', 'raw', path],
                           check=True)
            return path, lambda: os.unlink(path)
        engine = self.engines[variant]
        image = self.image_name if variant != 'cold' else 'cold%d' % n
        vm = 'vm%d' % n
        disk = engine.create(vm, image, self.image)

        def cleanup():
            engine.destroy(vm)
            if variant == 'cold':
                engine.remove_image(image)
        return disk.path, cleanup

    def daemon_pid(self, variant):
        engine = self.engines.get(variant)
        return engine.daemon.pid() if engine else None

    def shutdown(self):
        for engine in self.engines.values():
            with contextlib.suppress(Exception):
                engine.shutdown()


def measure(setup, reps, quick, cap_bytes):
    """{cell name: {variant: [seconds]}}, plus daemon CPU and bytes."""
    samples = {}
    cpu = {v: 0.0 for v in ('nbd', 'direct', 'cold')}
    served = {v: 0 for v in ('nbd', 'direct', 'cold')}
    order = list(VARIANTS)
    for rep in range(reps):
        for cell in cells(quick):
            name = cell_name(cell)
            count = cell_count(cell, setup.image_bytes, cap_bytes)
            variants = [v for v in order
                        if v != 'cold' or cell['op'] == 'read']
            for variant in variants:
                path, cleanup = setup.overlay(variant)
                try:
                    pid = setup.daemon_pid(variant)
                    before = cpu_seconds(pid) if variant in cpu else 0
                    seconds = run_bench_cmd(bench_args(
                        path, cell['op'], cell['pattern'], cell['size'],
                        cell['depth'], count, setup.image_bytes))
                    if variant in cpu:
                        cpu[variant] += cpu_seconds(pid) - before
                        served[variant] += count * cell['size']
                finally:
                    cleanup()
                samples.setdefault(name, {}).setdefault(
                    variant, []).append(seconds)
                samples[name]['bytes'] = count * cell['size']
            LOG.info('rep %d %s: %s', rep + 1, name, {
                v: samples[name][v][-1] for v in variants})
        order = order[1:] + order[:1]
    return samples, cpu, served


def summarize(samples, cpu, served):
    rows = []
    for name, by_variant in samples.items():
        row = {'cell': name, 'bytes': by_variant['bytes']}
        base = statistics.median(by_variant['baseline'])
        for variant in VARIANTS:
            if variant not in by_variant:
                continue
            med = statistics.median(by_variant[variant])
            row[variant + '_seconds'] = round(med, 4)
            row[variant + '_mib_s'] = round(row['bytes'] / MiB / med, 1)
            if variant != 'baseline':
                row[variant + '_ratio'] = round(base / med, 3)
        rows.append(row)
    cpu_per_gib = {v: round(cpu[v] / (served[v] / GiB), 3)
                   for v in cpu if served[v]}
    return rows, cpu_per_gib


def summarize_guest(samples):
    rows = []
    for name, by_variant in samples.items():
        base = statistics.median(by_variant['baseline'])
        row = {'cell': name, 'baseline_seconds': round(base, 3)}
        for variant in ('nbd', 'direct'):
            med = statistics.median(by_variant[variant])
            row[variant + '_seconds'] = round(med, 3)
            row[variant + '_ratio'] = round(base / med, 3) if med else None
        rows.append(row)
    return rows


def render(result):
    lines = ['Steady-state I/O: ratio = baseline seconds / variant seconds '
             '(1.0 = as fast as a qcow2 overlay on a local raw file, Nova\'s '
             'image cache); medians of %d repetitions, image %d MiB, '
             'load average %s -> %s' % (
                 result['reps'], result['image_mib'],
                 result['loadavg_start'], result['loadavg_end'])]
    header = '%-22s %10s %8s %8s %8s' % ('cell', 'base MiB/s', 'nbd',
                                         'direct', 'cold')
    lines += [header, '-' * len(header)]
    for row in result['rows']:
        lines.append('%-22s %10.1f %8s %8s %8s' % (
            row['cell'], row['baseline_mib_s'],
            *('%.2fx' % row[v + '_ratio'] if v + '_ratio' in row else '-'
              for v in ('nbd', 'direct', 'cold'))))
    lines.append('qemu-storage-daemon CPU seconds per GiB the VM read or '
                 'wrote: %s' % (
        ', '.join('%s %.3f' % kv for kv in
                  sorted(result['daemon_cpu_s_per_gib'].items()))))
    guest = result.get('guest')
    if guest:
        lines.append('From inside the guest (%s, dd O_DIRECT, sequential, '
                     'QD1; checksums of the data read matched): '
                     'baseline seconds, then ratios' % guest['accel'])
        for row in guest['rows']:
            lines.append('  %-12s %8.2f s %8s %8s' % (
                row['cell'], row['baseline_seconds'],
                *('%.2fx' % row[v + '_ratio'] if row[v + '_ratio']
                  else '-' for v in ('nbd', 'direct'))))
    tls = result.get('tls')
    if tls:
        lines.append('TLS-PSK vs plain NBD between two daemons (%d MiB, '
                     'median): psk %.3f s, plain %.3f s, psk/plain %.2fx' % (
                         tls['size_bytes'] // MiB, tls['psk_seconds'],
                         tls['none_seconds'],
                         tls['psk_seconds'] / tls['none_seconds']))
    if result.get('tls_transport'):
        from gate.bench import steady_tls
        lines.append(steady_tls.render(result['tls_transport']))
    return '\n'.join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m gate.bench.steady', description=__doc__.split(
            '\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='32 MiB image, 4K and 1M only, 8 MiB a cell, '
                             'one repetition: a smoke run of about half a '
                             'minute, its figures mean little.')
    parser.add_argument('--reps', type=int, choices=range(1, 21),
                        metavar='N', help='Repetitions (default 3).')
    parser.add_argument('--image-mib', type=int, choices=range(8, 4097),
                        metavar='MIB', help='Image size (default 256).')
    parser.add_argument('--tls', action='store_true',
                        help='Also measure TLS-PSK vs plain NBD: a child '
                             'host reading a parent through the engines, '
                             'and the transport alone by cipher and '
                             'request size.')
    parser.add_argument('--guest', action='store_true',
                        help='Also measure from inside a real guest (the '
                             'demo guest under QEMU; built once into '
                             '--cache-dir): dd with O_DIRECT, checksums '
                             'checked.')
    parser.add_argument('--cache-dir', metavar='DIR',
                        help='Where the demo guest is built and kept '
                             '(default: $FASTBOOT_TEST_CACHE or '
                             '~/.cache/fastboot).')
    parser.add_argument('--json', metavar='FILE',
                        help='Also write every figure as JSON to FILE.')
    parser.add_argument('-v', '--verbose', action='store_true')
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.image_mib is None:
        args.image_mib = 32 if args.quick else 256
    return args


def run(image_mib, reps, quick=False, tls=False, guest=False,
        cache_dir=None):
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix='fbsteady-', dir='/tmp')
    setup = None
    try:
        setup = Setup(work, image_mib)
        samples, cpu, served = measure(setup, reps, quick,
                                       8 * MiB if quick else 128 * MiB)
        if guest:
            from gate import bench
            from gate.bench import steady_guest
            guest_samples, accel = steady_guest.measure(
                setup, reps, os.path.expanduser(
                    cache_dir or bench.default_cache_dir()))
    finally:
        if setup is not None:
            setup.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    rows, cpu_per_gib = summarize(samples, cpu, served)
    result = {'image_mib': image_mib, 'reps': reps, 'quick': quick,
              'rows': rows, 'daemon_cpu_s_per_gib': cpu_per_gib,
              'loadavg_start': loadavg_start}
    if guest:
        result['guest'] = {'accel': accel,
                           'rows': summarize_guest(guest_samples)}
    if tls:
        from gate.bench import steady_tls
        from gate.bench import tls as tls_mod
        result['tls'] = tls_mod.tls_overhead(
            size_mib=min(image_mib, 64), rounds=reps)
        result['tls_transport'] = steady_tls.measure(
            size_mib=min(image_mib, 64), reps=reps)
    result['loadavg_end'] = [round(x, 2) for x in os.getloadavg()]
    result['seconds'] = round(time.monotonic() - started, 1)
    return result


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr, format='%(asctime)s %(name)s: %(message)s')
    result = run(args.image_mib, args.reps, args.quick, args.tls,
                 args.guest, args.cache_dir)
    print(render(result))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
