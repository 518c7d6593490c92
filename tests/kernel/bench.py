"""``tox -e bench-kernel``: the dm backend benchmark, inside the test guest.

Boots the cached kernel-test guest (:mod:`tests.kernel.kguest`) once with
fresh disks, runs :mod:`tests.kernel.guest_bench` in it and prints:

- per-VM snapshot create time of the real DmEngine (mean over K VMs);
- O_DIRECT sequential and 4 KiB random read throughput through cache +
  snapshot, cold and warm cache, as ratios to the raw origin device read
  in the same boot;
- dm-snapshot against dm-thin (external origin) over the same cache:
  create time of the first and the K-th VM, reads, first writes, space per
  VM, discard, what happens when the copy-on-write space runs out and when
  the origin fails during a first write.

Under TCG every figure is relative: the guest's disks are files in the
host's page cache and the CPU is emulated. Needs root and the test
packages of bindep.txt, like ``tox -e kernel``.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile

from tests.kernel import kguest

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _random_file(path, mib, seed):
    rng = random.Random(seed)
    with open(path, 'wb') as f:
        for _ in range(mib):
            f.write(rng.randbytes(1 << 20))


#: Sizes of a full run and of a ``--quick`` smoke run.
DEFAULTS = {'origin_mib': 64, 'k': 20, 'rand': 1000}
QUICK = {'origin_mib': 16, 'k': 3, 'rand': 100}


def run(args):
    guest = kguest.build(progress=lambda m: print(m, file=sys.stderr))
    tmp = tempfile.mkdtemp(prefix='fb-kbench-')
    try:
        state = os.path.join(tmp, 'state.ext4')
        kguest.make_state_disk(state, size_mib=512)
        disks = [(state, 'state')]
        for name, mib in (('origin1', args.origin_mib),
                          ('cache0', 2 * args.origin_mib + 64),
                          ('origin2', 64)):
            path = os.path.join(tmp, name + '.raw')
            _random_file(path, mib, name)
            disks.append((path, name))
        res = kguest.run(
            guest, SOURCE_DIR, disks,
            ['scenario=bench', 'origin=/dev/vdc', 'cache=/dev/vdd',
             'origin2=/dev/vde', 'k=%d' % args.k, 'rand=%d' % args.rand,
             'privsep=%s' % args.privsep],
            timeout=args.timeout, memory_mib=512,
            console_log=os.path.join(tmp, 'console.log'))
        if not res.result or not res.result.get('ok'):
            print(res.console[-6000:], file=sys.stderr)
            raise SystemExit('benchmark failed in the guest')
        res.result['guest_wall_s'] = round(res.wall_seconds, 1)
        return res.result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _r(a, b):
    return '%.2f' % (a / b) if b else 'n/a'


def report(result, out=sys.stdout):
    info = result['info']
    c = info['compare']
    w = out.write
    w('dm backend benchmark (in a TCG guest: figures are only relative; '
      'compare the ratios, not the absolute numbers)\n')
    w('origin %d MiB, K=%d VMs, guest wall %.1f s\n\n' % (
        info['origin_mib'], info['k'], result['guest_wall_s']))
    for kind in ('thin', 'snapshot'):
        e = info['engine'][kind]
        w('DmEngine, snapshot_type = %s\n' % kind)
        w('  create per VM: mean %.3f s over VMs 2..K (first, with the '
          'image: %.3f s; K-th: %.3f s)\n' % (
              e['create_mean_s'], e['create_first_with_image_s'],
              e['create_last_s']))
        for key, label in (('seq', 'sequential 1 MiB'),
                           ('rand4k', 'random 4 KiB')):
            s = e[key]
            w('  %-16s raw origin %8.2f MB/s | cache+%s cold %8.2f (x%s, '
              'hits %s) warm %8.2f (x%s, hits %s, after %d warm-up '
              'passes)\n' % (label, s['raw_mbs'], kind, s['cold_mbs'],
                             _r(s['cold_mbs'], s['raw_mbs']),
                             s['cold_hit_ratio'], s['warm_mbs'],
                             _r(s['warm_mbs'], s['raw_mbs']),
                             s['warm_hit_ratio'], s['warm_up_passes']))
    t, n = info['engine']['thin'], info['engine']['snapshot']
    w('thin/snapshot: create x%s, seq cold x%s warm x%s, rand cold x%s '
      'warm x%s\n' % (_r(t['create_mean_s'], n['create_mean_s']),
                      _r(t['seq']['cold_mbs'], n['seq']['cold_mbs']),
                      _r(t['seq']['warm_mbs'], n['seq']['warm_mbs']),
                      _r(t['rand4k']['cold_mbs'], n['rand4k']['cold_mbs']),
                      _r(t['rand4k']['warm_mbs'],
                         n['rand4k']['warm_mbs'])))
    w('(dm-cache smq promotes blocks read again, in the background, not on '
      'a first miss)\n')
    w('\ndm-snapshot (P, sparse file + loop) vs dm-thin (external origin), '
      'both over the same dm-cache\n')
    cs, ct = c['create_snapshot'], c['create_thin']
    keys = sorted(k for k in cs if k.startswith(('first', 'last')))
    w('create  snapshot: %s\n' % ', '.join('%s %.4f' % (k, cs[k])
                                           for k in keys))
    w('create  thin:     %s\n' % ', '.join('%s %.4f' % (k, ct[k])
                                           for k in keys))
    w('create  thin/snapshot mean time ratio x%s; K-th/1st: snapshot x%s, '
      'thin x%s\n' % (_r(ct['mean_s'], cs['mean_s']),
                      _r(cs['last_s'], cs['first_s']),
                      _r(ct['last_s'], ct['first_s'])))
    rs, rt = c['read_snapshot'], c['read_thin']
    w('read    seq thin/snapshot x%s, rand 4K thin/snapshot x%s\n' % (
        _r(rt['seq_mbs'], rs['seq_mbs']),
        _r(rt['rand4k_mbs'], rs['rand4k_mbs'])))
    ws, wt = c['write_snapshot'], c['write_thin']
    w('write   first seq thin/snapshot x%s, overwrite x%s, first rand 4K '
      'x%s\n' % (_r(wt['first_seq_mbs'], ws['first_seq_mbs']),
                 _r(wt['overwrite_seq_mbs'], ws['overwrite_seq_mbs']),
                 _r(wt['first_rand4k_mbs'], ws['first_rand4k_mbs'])))
    for label, x in (('snapshot', ws), ('thin', wt)):
        w('space   %-8s %d MiB seq -> %.2f MiB; %.2f MiB of random 4K -> '
          '%.2f MiB; after discard %.2f MiB (discard error: %s)\n' % (
              label, x['seq_written_mib'], x['space_after_seq_mib'],
              x['rand4k_written_mib'], x['space_after_rand4k_mib'],
              x['space_after_discard_mib'], x['discard_error']))
    for key in ('snapshot_full', 'thin_full', 'origin_error_snapshot',
                'origin_error_thin'):
        if key in c:
            w('%-22s %s\n' % (key, json.dumps(c[key], sort_keys=True)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--origin-mib', type=int,
                   help='origin size (default 64, --quick 16)')
    p.add_argument('--k', type=int,
                   help='VMs per design (default 20, --quick 3; --k 50 '
                        'compares the 50th VM with the 1st, and takes '
                        'much longer)')
    p.add_argument('--rand', type=int,
                   help='random 4 KiB reads per pass (default 1000, '
                        '--quick 100)')
    p.add_argument('--quick', action='store_true',
                   help='a small origin and few VMs: a smoke run of every '
                        'part in about a minute')
    p.add_argument('--privsep', choices=('daemon', 'inproc'),
                   default='daemon')
    p.add_argument('--timeout', type=int, default=3600)
    p.add_argument('--json', help='write the raw figures to this file')
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    result = run(args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, sort_keys=True)
    report(result)


if __name__ == '__main__':
    main()
