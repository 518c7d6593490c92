"""The demo through a real OpenStack: N guests from one volume snapshot.

``python3 -m ministack demo`` runs this module in the ministack's venv
(it builds the demo guest with fastboot_nova, which the venv has): a
volume holding the guest, its snapshot, an origin volume from the
snapshot and a fastboot image naming it, then ``openstack server create
--min N --max N`` as the demo user. Each guest prints its root disk's
checksum on its serial console; the boot time of a guest is from the
create request to that line. The bytes the origin served are Ceph's
read counter of the volumes pool (every compute reads the origin through
librbd), before and after.

The report has the standalone demo's fields (``vms``: name,
boot_seconds, ok, checksum_ok; ``origin_bytes_read``; ``image_bytes``);
with ``--stock``, also ``stock``: the figures of
``ministack.scenarios.stock`` (the same count booted fastboot's way, with
a Cinder volume per server as RBD clones, and as full copies).
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid

from ministack.scenarios import cloud as cloud_mod
from ministack.scenarios import stock
from ministack.services import ceph
from ministack import stack as stack_mod


def _table(report):
    lines = ['%-16s %12s %4s %11s' % ('name', 'boot seconds', 'ok',
                                      'checksum ok')]
    for vm in report['vms']:
        lines.append('%-16s %12s %4s %11s' % (
            vm['name'], '-' if vm['boot_seconds'] is None
            else '%.2f' % vm['boot_seconds'], 'yes' if vm['ok'] else 'NO',
            'yes' if vm['checksum_ok'] else 'NO'))
    lines.append('origin bytes read: %d (%.2f x one image of %d bytes)' % (
        report['origin_bytes_read'],
        report['origin_bytes_read'] / max(1, report['image_bytes']),
        report['image_bytes']))
    lines.append('all %d ACTIVE with checksums in %.2f s' % (
        len(report['vms']), report['storm_seconds'])
        if report['all_ok'] else 'FAILED: see the table')
    return '\n'.join(lines)


def run(stack, vms, progress=print):
    from fastboot_nova.demo import guest as guest_mod
    from fastboot_nova.demo import runner

    cloud = cloud_mod.Cloud(stack)
    progress('building (or reusing) the demo guest')
    guest = guest_mod.build_guest(runner.DEFAULT_CACHE_DIR)
    tag = uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix='fbms-demo-')
    undo = []
    try:
        progress('volume -> snapshot -> origin volume -> fastboot image')
        made = cloud.snapshot_origin(
            guest, tag, workdir, lambda f, *a: undo.append((f, a)))
        name = 'ms-demo%s' % tag
        read_before = ceph.pool_stats(stack.layout)['rd_bytes']
        progress('openstack server create --min %d --max %d' % (vms, vms))
        started = time.monotonic()
        cloud.openstack('server', 'create', '--image', made['image'],
                        '--flavor', cloud_mod.FLAVOR, '--nic', 'none',
                        '--min', vms, '--max', vms, name)
        undo.append((_delete_servers, (cloud, name)))
        servers = cloud.wait_servers(name, vms, timeout=1800)
        sums = cloud.wait_checksums(servers, started, timeout=900)
        storm_seconds = time.monotonic() - started
        origin_bytes = (ceph.pool_stats(stack.layout)['rd_bytes']
                        - read_before)
        vms_out = []
        for server in sorted(servers, key=lambda s: s['Name']):
            seconds, value = sums[server['ID']]
            vms_out.append({
                'name': server['Name'],
                'host': server['Host'],
                'boot_seconds': round(seconds, 3) if value else None,
                'ok': value is not None,
                'checksum_ok': value == guest.payload_sha256})
        return {
            'backend': 'openstack',
            'vms': vms_out,
            'all_ok': all(v['ok'] and v['checksum_ok'] for v in vms_out),
            'origin_bytes_read': origin_bytes,
            'image_bytes': guest.image_size,
            'storm_seconds': round(storm_seconds, 3),
            'hosts': sorted({v['host'] for v in vms_out}),
        }
    finally:
        progress('deleting the servers, image and volumes')
        for func, args in reversed(undo):
            func(*args)
        shutil.rmtree(workdir, ignore_errors=True)


def _delete_servers(cloud, name):
    ids = [s['ID'] for s in cloud.servers(name)]
    if ids:
        cloud.openstack('server', 'delete', '--wait', *ids, parse=False,
                        check=False, timeout=900)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m ministack.demo')
    parser.add_argument('--vms', type=_positive, default=4)
    parser.add_argument('--report', help='write the JSON report here')
    parser.add_argument('--stock', action='store_true',
                        help='then the same count the stock ways')
    args = parser.parse_args(argv)
    stack = stack_mod.Stack()

    def progress(message):
        print('demo: %s' % message, flush=True)

    report = run(stack, args.vms, progress=progress)
    print(_table(report))
    if args.stock:
        # A volume per server from the snapshot, RBD clones then full
        # copies, beside fastboot again (ministack.scenarios.stock).
        figures = stock.compare(stack, count=args.vms, log=progress)
        report['stock'] = {k: v for k, v in figures.items()
                           if k != 'report'}
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=2)
            f.write('\n')
    return 0 if report['all_ok'] else 1


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1: %s' % text)
    return value


if __name__ == '__main__':
    sys.exit(main())
