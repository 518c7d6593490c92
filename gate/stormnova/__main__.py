"""``python -m gate.stormnova``: the storm benchmark (see the package doc).

Runs as root on Debian 12 (MariaDB, RabbitMQ and the services' venv, as
ministack). Everything runs under ``nice`` (``--nice``, default 10), the
run directory is removed at the end unless ``--keep``.
"""

import argparse
import os
import pathlib
import sys
import time

DEFAULT_COUNTS = (100, 250, 500, 1000)
QUICK_COUNTS = (20,)


def _positive_ints(text):
    try:
        values = tuple(int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError('a comma-separated list of '
                                         'integers: %r' % text) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('every N must be >= 1: %r' % text)
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(prog='python -m gate.stormnova',
                                description=__doc__.splitlines()[0])
    p.add_argument('--counts', type=_positive_ints, default=None,
                   help='storm sizes N (default %s)'
                   % ','.join(map(str, DEFAULT_COUNTS)))
    p.add_argument('--quick', action='store_true',
                   help='N=%s only, 2 computes' % QUICK_COUNTS[0])
    p.add_argument('--computes', type=int, default=None,
                   help='nova-compute processes (default 4, --quick 2)')
    p.add_argument('--profiles', default='defaults,tuned',
                   help='defaults, tuned or both, in this order')
    p.add_argument('--modes', default='one,batches',
                   help="'one' (one request) and/or 'batches'")
    p.add_argument('--bulk-size', type=int, default=50,
                   help='servers per request in batches mode '
                   '(fastboot-runner [batches] bulk_size)')
    p.add_argument('--timeout', type=float, default=None,
                   help='seconds a storm may take (default 300 + 2 x N)')
    p.add_argument('--json', type=pathlib.Path, help='write the results')
    p.add_argument('--report', type=pathlib.Path,
                   help='directory for results.json, table.txt and PNGs')
    p.add_argument('--nice', type=int, default=10)
    p.add_argument('--keep', action='store_true',
                   help='leave the services running and the run dir')
    args = p.parse_args(argv)
    args.counts = args.counts or (QUICK_COUNTS if args.quick
                                  else DEFAULT_COUNTS)
    args.computes = args.computes or (2 if args.quick else 4)
    args.profiles = tuple(args.profiles.split(','))
    args.modes = tuple(args.modes.split(','))
    bad = [x for x in args.profiles if x not in ('defaults', 'tuned')] + \
        [x for x in args.modes if x not in ('one', 'batches')]
    if bad or args.computes < 1 or args.bulk_size < 1:
        p.error('bad --profiles/--modes/--computes/--bulk-size: %s'
                % (bad or 'must be >= 1'))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print('storm: needs root (MariaDB, RabbitMQ and privsep as '
              'ministack)', file=sys.stderr)
        return 2
    if args.nice:
        os.nice(args.nice)
    from gate.stormnova import cloud
    from gate.stormnova import report
    from gate.stormnova import run

    stack = cloud.make_stack()
    hosts = cloud.host_names(args.computes)
    started = time.monotonic()
    document = {'counts': args.counts, 'computes': args.computes,
                'modes': args.modes, 'bulk_size': args.bulk_size,
                'load_before': os.getloadavg(), 'profiles': []}
    results = []
    try:
        cloud.up_base(stack)
        for profile in args.profiles:
            out = run.run_profile(
                stack, profile, args.counts, args.modes, args.computes,
                args.bulk_size,
                lambda n: args.timeout or 300 + 2 * n)
            document['profiles'].append(
                {k: v for k, v in out.items() if k != 'storms'})
            results += out['storms']
    finally:
        if not args.keep:
            left = cloud.down(stack, hosts)
            if left:
                print('storm: still running: %s' % ', '.join(left))
    document['load_after'] = os.getloadavg()
    document['wall_s'] = round(time.monotonic() - started, 1)
    document['storms'] = results
    document['broke_first'] = report.broke_first(results)
    text = report.table(results)
    print(text)
    print(document['broke_first'])
    print('storm: whole run %.0f s, load average %s -> %s' % (
        document['wall_s'], document['load_before'], document['load_after']))
    if args.json:
        report.write_json(args.json, document)
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        report.write_json(args.report / 'results.json', document)
        (args.report / 'table.txt').write_text(
            text + '\n\n' + document['broke_first'] + '\n')
        for path in report.plots(results, args.report):
            print('storm: wrote %s' % path)
    bad = [r for r in results if not r['cleanup']['clean']]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
