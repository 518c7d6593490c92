"""``python -m gate.bench.nova [--counts 20,50,100] [--quick]``.

In one in-process Nova, boot N servers from one volume snapshot the stock
way (a volume per server, one request) and the fastboot way (one shared
volume, the real qemu engine; one request through a fastboot image, or
``--fastboot-requests per-server``), for each N; print volumes created,
bytes copied and written, time to all ACTIVE and to delete all, as
fastboot/stock ratios (:mod:`gate.bench.novarun`). Needs nova's
functional test package (``nova.tests.functional``, with
openstack-placement and wsgi-intercept: ``tox -e bench-nova`` installs
them) and ``qemu-img`` and ``qemu-storage-daemon``.

Prints the tables on stdout and progress on stderr; exits 0 when both
modes booted every server as they must, 1 otherwise, 2 on bad arguments.
"""

import argparse
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys

DEFAULT_COUNTS = (20, 50, 100)
QUICK_COUNTS = (5, 10)
MAX_COUNT = 200
MAX_HOSTS = 2
#: How the fastboot mode asks Nova (keys of novacloud.FASTBOOT_BOOTS, which
#: cannot be imported before the dependency check).
FASTBOOT_REQUESTS = ('one', 'per-server')
TOOLS = ('qemu-img', 'qemu-storage-daemon')
#: What the in-process cloud imports; checked before anything starts.
NOVA_TEST_MODULES = ('placement', 'wsgi_intercept',
                     'nova.tests.functional.libvirt.base')


class MissingDependency(Exception):
    """Something the benchmark needs is not installed."""


def parse_counts(text):
    try:
        counts = [int(c) for c in text.split(',') if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            '%r is not a comma-separated list of numbers' % text)
    if not counts:
        raise argparse.ArgumentTypeError('no count given')
    for count in counts:
        if not 1 <= count <= MAX_COUNT:
            raise argparse.ArgumentTypeError(
                'each count must be from 1 to %d, not %d' % (MAX_COUNT,
                                                             count))
    return counts


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m gate.bench.nova',
        description='In-process Nova: N servers from one volume snapshot, '
                    'stock (a volume per server) vs fastboot (one shared '
                    'volume), measured in the same run.')
    parser.add_argument(
        '--counts', type=parse_counts, metavar='N[,N...]',
        help='Server counts (default %s, --quick %s; at most %d).' % (
            ','.join(map(str, DEFAULT_COUNTS)),
            ','.join(map(str, QUICK_COUNTS)), MAX_COUNT))
    parser.add_argument(
        '--quick', action='store_true',
        help='Small counts, for a smoke test.')
    parser.add_argument(
        '--hosts', type=int, choices=range(1, MAX_HOSTS + 1), default=1,
        help='Compute hosts (default 1).')
    parser.add_argument(
        '--fastboot-requests', choices=FASTBOOT_REQUESTS, default='one',
        help='fastboot mode: N servers in one request from a fastboot '
             'image (default), or a request per server booting from the '
             'shared volume.')
    parser.add_argument(
        '--image', metavar='FILE',
        help='Image the volume snapshot holds (raw or qcow2); default the '
             'demo guest image, built once into the cache directory.')
    parser.add_argument(
        '--cache-dir', metavar='DIR',
        help='Where the demo guest is built and kept (default: '
             '$FASTBOOT_TEST_CACHE or ~/.cache/fastboot).')
    parser.add_argument(
        '--json', metavar='FILE',
        help='Also write every figure as JSON to FILE.')
    parser.add_argument(
        '--nova-as-is', action='store_true',
        help="Keep Nova's allocation listing on every claim (only used "
             'for reshapes; quadratic in servers: N=100 then takes '
             'minutes per mode).')
    parser.add_argument(
        '-v', '--verbose', action='store_true',
        help="Keep Nova's INFO logs (they slow the run down).")
    args = parser.parse_args(argv)
    if args.counts is None:
        args.counts = list(QUICK_COUNTS if args.quick else DEFAULT_COUNTS)
    if args.image and not os.path.isfile(args.image):
        parser.error('--image: %s does not exist' % args.image)
    if args.json:
        json_dir = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(json_dir):
            parser.error('--json: directory %s does not exist' % json_dir)
    return args


def check_dependencies(which=shutil.which,
                       find_spec=importlib.util.find_spec):
    """Raise MissingDependency naming what is missing, before any work."""
    missing = [tool for tool in TOOLS if which(tool) is None]
    if missing:
        raise MissingDependency(
            '%s not found: install the qemu-utils and qemu-system packages '
            '(bindep.txt)' % ', '.join(missing))
    for name in NOVA_TEST_MODULES:
        try:
            found = find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise MissingDependency(
                'Python module %s not found: the benchmark runs Nova '
                "in-process with nova's functional test package; run it "
                'with `tox -e bench-nova`, or install nova and '
                'test-requirements.txt (openstack-placement, '
                'wsgi-intercept) into this environment' % name)


def default_image(cache_dir, progress):
    """The demo guest's image, built once (MissingDependency if not)."""
    from fastboot_nova.demo import guest as guest_mod
    from gate import bench
    try:
        guest = guest_mod.build_guest(
            os.path.expanduser(cache_dir or bench.default_cache_dir()),
            progress=progress)
    except guest_mod.GuestBuildError as e:
        raise MissingDependency('cannot build the demo guest image (%s); '
                                'give an image with --image FILE' % e)
    return guest.image


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def main(argv=None, handle_signals=False):
    """Run the benchmark; ``handle_signals`` only in a process of its own."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_dependencies()
        image = args.image or default_image(args.cache_dir, _progress)
    except MissingDependency as e:
        print('bench-nova: error: %s' % e, file=sys.stderr)
        return 1
    nova_log = logging.getLogger('nova')
    nova_level = nova_log.level
    if not args.verbose:
        # Nova logs every request at INFO; that is noise here, and time.
        nova_log.setLevel(logging.WARNING)
    # Imported only now: nova's test package monkey-patches eventlet.
    from gate.bench import novacloud
    from gate.bench import novareport
    from gate.bench import novarun
    if handle_signals:
        # Stop at the next wait; the cloud's cleanups stop the storage
        # daemons and remove the volume files.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, novacloud.request_stop)
    try:
        result = novarun.run_bench(args.counts, image, hosts=args.hosts,
                                   progress=_progress,
                                   nova_as_is=args.nova_as_is,
                                   fastboot_requests=args.fastboot_requests)
    except (novacloud.BenchError, novarun.volstore.VolumeStoreError) as e:
        signum = novacloud.stop_signal()
        if signum is not None:
            print('bench-nova: stopped by signal %d; the cloud was cleaned '
                  'up' % signum, file=sys.stderr)
            return 128 + signum
        print('bench-nova: error: %s' % e, file=sys.stderr)
        return 1
    finally:
        nova_log.setLevel(nova_level)
    print(novareport.render(result))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write('\n')
    return 0 if novareport.succeeded(result) else 1


if __name__ == '__main__':
    sys.exit(main(handle_signals=True))
