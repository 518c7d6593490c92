"""``python -m gate.bench [--vms N] [--json FILE] [--quick]``.

Prints the table of :func:`gate.bench.report.render` on stdout
and progress on stderr; exits 0 when every measurement ran and every
guest booted right, 1 otherwise.
"""

import argparse
import json
import logging
import os
import signal
import sys

from oslo_config import cfg

from fastboot_nova.conf import fastboot as fastboot_conf
from gate import bench
from gate.bench import report

LOG = logging.getLogger('gate.bench')


def _bounded_int(low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError('%r is not a number' % text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                'must be from %d to %d' % (low, high))
        return value
    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m gate.bench',
        description='Measure fastboot against baselines run on this '
                    'machine in the same run: origin bytes of a boot storm '
                    'vs full copies, per-VM snapshot create time vs a bare '
                    'qemu-img overlay, cold vs warm creates.')
    parser.add_argument(
        '--vms', type=_bounded_int(1, bench.MAX_VMS), metavar='N',
        help='VMs in the boot storm (default %d, --quick %d).' % (
            bench.DEFAULT_VMS, bench.QUICK_VMS))
    parser.add_argument(
        '--snapshots', type=_bounded_int(1, bench.MAX_SNAPSHOTS),
        metavar='M',
        help='Snapshot creates to time (default %d, --quick %d).' % (
            bench.DEFAULT_SNAPSHOTS, bench.QUICK_SNAPSHOTS))
    parser.add_argument(
        '--quick', action='store_true',
        help='Smaller default sizes, for a run of about a minute.')
    parser.add_argument(
        '--json', metavar='FILE',
        help='Also write every figure as JSON to FILE.')
    parser.add_argument(
        '--cache-dir', metavar='DIR',
        help='Where the demo guest is built and kept (default: $%s or '
             '~/.cache/fastboot).' % bench.CACHE_ENV)
    parser.add_argument(
        '--config-file', metavar='FILE', action='append', default=[],
        help='fastboot configuration file(s) for the [fastboot] options '
             '(cache cluster size, binaries...); defaults otherwise.')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='Log what every component does.')
    args = parser.parse_args(argv)
    if args.vms is None:
        args.vms = bench.QUICK_VMS if args.quick else bench.DEFAULT_VMS
    if args.snapshots is None:
        args.snapshots = (bench.QUICK_SNAPSHOTS if args.quick
                          else bench.DEFAULT_SNAPSHOTS)
    if args.json:
        json_dir = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(json_dir):
            parser.error('--json: directory %s does not exist' % json_dir)
    for path in args.config_file:
        if not os.path.isfile(path):
            parser.error('--config-file: %s does not exist' % path)
    return args


def make_conf(config_files):
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf(args=[], project='fastboot', default_config_files=config_files,
         default_config_dirs=[])
    return conf


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived.

    A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` swallows it: it unwinds the stack and every cleanup runs.
    The daemons are daemonized and would otherwise outlive the run.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr, format='%(asctime)s %(name)s: %(message)s')
    LOG.setLevel(logging.INFO)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)
    try:
        result = bench.run_bench(make_conf(args.config_file), vms=args.vms,
                                 snapshots=args.snapshots,
                                 cache_dir=args.cache_dir, quick=args.quick)
    except KeyboardInterrupt:
        LOG.error('Interrupted; everything started was cleaned up')
        return 128 + signal.SIGINT
    except Terminated as e:
        LOG.error('Stopped by signal %d; everything started was cleaned '
                  'up', e.signum)
        return 128 + e.signum
    except Exception as e:
        LOG.exception('Benchmark failed: %s', e)
        return 1
    print(report.render(result))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write('\n')
    return 0 if report.succeeded(result) else 1


if __name__ == '__main__':
    sys.exit(main())
