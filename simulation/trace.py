"""Record a boot trace: which blocks a real boot reads, in order, when.

``python -m simulation.trace --out simulation/traces/demo.json.gz`` boots
the demo guest (:mod:`fastboot_nova.demo.guest`) once under QEMU on a
qcow2 overlay of its origin image, as a fastboot VM disk is, with QEMU's
``virtio_blk_handle_read``/``_write``/``virtio_blk_rw_complete`` trace
events (``-msg timestamp=on`` stamps them), and samples the QEMU process's
CPU time every 10 ms.

Why both clocks: on a shared machine a TCG guest gets a varying share of a
core, so wall-clock gaps between reads say little. The trace stores each
request at the guest's *CPU time*: the model replays a boot as CPU work
(seconds of one core) between I/O batches, and gives each VM the CPU share
the simulated machine has (a TCG testbed host, or a KVM compute host).

The disk is local and warm (page cache), so a request completes in
microseconds and the gaps are the guest's own work.

Output: gzip'd JSON, see :func:`simulation.traces.load`.
"""

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')
_EVENT = re.compile(r'^(\d+)@(\d+\.\d+):(virtio_blk_\w+) .*?req (0x[0-9a-f]+)'
                    r'(?: sector (\d+) nsectors (\d+))?')


def _cpu(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def record(guest, workdir, name='trace', accel='tcg'):
    from fastboot_nova.demo import vm as vm_mod

    overlay = os.path.join(workdir, 'vm.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b',
                    guest.image, '-F', 'raw', overlay], check=True)
    log = os.path.join(workdir, 'qemu.trace')
    argv = vm_mod.qemu_argv(guest, name, overlay, accel) + [
        '-msg', 'timestamp=on', '-D', log,
        '-trace', 'virtio_blk_handle_read',
        '-trace', 'virtio_blk_handle_write',
        '-trace', 'virtio_blk_rw_complete']
    samples = []
    started = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            c = _cpu(proc.pid)
            if c is not None:
                samples.append((time.time(), c))
            stop.wait(0.01)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    checksum_at = None
    for raw in proc.stdout:
        if vm_mod.CHECKSUM_TAG.encode() in raw and checksum_at is None:
            checksum_at = time.time()
    proc.wait(timeout=60)
    stop.set()
    t.join()
    if checksum_at is None or proc.returncode:
        raise RuntimeError('the traced boot failed (exit %s)' %
                           proc.returncode)
    with open(log) as f:
        events = [m.groups() for m in map(_EVENT.match, f) if m]
    return _build(events, samples, started, checksum_at, guest)


def _cpu_at(samples, wall):
    """CPU seconds of the guest at wall time ``wall`` (interpolated)."""
    lo = 0
    hi = len(samples) - 1
    if wall <= samples[0][0]:
        return samples[0][1] * max(wall - samples[0][0] + 1, 0)
    if wall >= samples[hi][0]:
        return samples[hi][1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if samples[mid][0] <= wall:
            lo = mid
        else:
            hi = mid
    (w0, c0), (w1, c1) = samples[lo], samples[hi]
    return c0 + (c1 - c0) * (wall - w0) / (w1 - w0) if w1 > w0 else c0


def _build(events, samples, started, checksum_at, guest):
    pending = {}
    requests = []
    for _pid, ts, event, req, sector, nsectors in events:
        ts = float(ts)
        if event in ('virtio_blk_handle_read', 'virtio_blk_handle_write'):
            pending[req] = len(requests)
            requests.append({'op': 'R' if event.endswith('read') else 'W',
                             'wall': ts - started,
                             'cpu': _cpu_at(samples, ts),
                             'offset': int(sector) * 512,
                             'length': int(nsectors) * 512,
                             'done_wall': None})
        elif event == 'virtio_blk_rw_complete' and req in pending:
            r = requests[pending.pop(req)]
            r['done_wall'] = ts - started
            r['done_cpu'] = _cpu_at(samples, ts)
    end_cpu = _cpu_at(samples, checksum_at)
    return {
        'format': 1,
        'guest': os.path.basename(guest.directory),
        'image_bytes': guest.image_size,
        'boot_wall_seconds': round(checksum_at - started, 3),
        'boot_cpu_seconds': round(end_cpu, 3),
        'recorded_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        # op, cpu s at issue, cpu s at completion, offset, length
        'columns': ['op', 'cpu', 'done_cpu', 'offset', 'length'],
        'requests': [[r['op'], round(r['cpu'], 4),
                      round(r.get('done_cpu', r['cpu']), 4), r['offset'],
                      r['length']] for r in requests],
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m simulation.trace')
    p.add_argument('--out', required=True)
    p.add_argument('--cache-dir', default=os.path.join(
        os.path.expanduser('~'), '.cache', 'fastboot'))
    args = p.parse_args(argv)
    from fastboot_nova.demo import guest as guest_mod
    guest = guest_mod.build_guest(args.cache_dir)
    with tempfile.TemporaryDirectory(prefix='smtrace-') as workdir:
        trace = record(guest, workdir)
    with gzip.open(args.out, 'wt', encoding='utf-8') as f:
        json.dump(trace, f, separators=(',', ':'))
    reads = [r for r in trace['requests'] if r[0] == 'R']
    print('%d reads, %d bytes, boot %.2f s wall, %.2f s CPU' % (
        len(reads), sum(r[4] for r in reads), trace['boot_wall_seconds'],
        trace['boot_cpu_seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
