"""Fastboot against the stock boot from a volume snapshot, in one cloud.

The same N servers three ways, one after the other, on ministack's Ceph:

- ``fastboot``: one multiattach origin volume from the snapshot, a
  fastboot image naming it, ``openstack server create --min N --max N``:
  one volume in all, each compute host reads the origin into one cache;
- ``stock_clone``: ``--block-device source_type=snapshot,...,
  destination_type=volume``: Cinder makes a volume per server. With RBD's
  default (``rbd_flatten_volume_from_snapshot = false``) each is a
  copy-on-write clone of the snapshot: creating it copies nothing, so
  this baseline is cheap, cheaper than most backends;
- ``stock_flatten``: the same on a backend with
  ``rbd_flatten_volume_from_snapshot = true`` (``ceph-flatten``): every
  volume is a full copy, as LVM/iSCSI and most SANs make it.

Figures per way: volumes created, bytes the pool read and wrote (``ceph
df detail`` deltas), time from ``server create`` to all ACTIVE; ratios
fastboot/stock; and the bytes fastboot read from the origin against N x
the boot working set (a stock-clone server reads its working set through
its clone, so the stock-clone read delta / N estimates one).

Used by ``tests/ministack/test_stock_comparison.py`` and by the demo
(``compare(stack)``); it raises ``ScenarioError`` when a server does not
come up, prints a wrong checksum or leaves a volume or domain behind.
"""

import json
import os
import tempfile
import time
import uuid

from ministack.scenarios import cloud as cloud_mod
from ministack.services import ceph
from ministack.services import cinder

ScenarioError = cloud_mod.ScenarioError

#: Seconds to let the OSD report its counters to the mgr before a sample
#: (``ceph df`` reads the mgr's PG stats, refreshed every few seconds).
SETTLE = 12
REPORT_ENV = 'MINISTACK_STOCK_REPORT'


def report_path(stack):
    return os.environ.get(REPORT_ENV) or str(
        stack.layout.run_dir / 'stock-comparison.json')


def ensure_types(cloud):
    """The two stock volume types, on the clone and flatten backends."""
    have = {t['Name'] for t in cloud.openstack('volume', 'type', 'list',
                                               user='admin')}
    for name, backend in cinder.STOCK_TYPES.items():
        if name not in have:
            cloud.openstack('volume', 'type', 'create', '--public',
                            '--property',
                            'volume_backend_name=%s' % backend, name,
                            user='admin')


class _Window:
    """Pool counters and wall time around one way of booting."""

    def __init__(self, layout):
        self.layout = layout

    def sample(self):
        time.sleep(SETTLE)
        return ceph.pool_stats(self.layout)

    def __enter__(self):
        self.before = self.sample()
        return self

    def finish(self):
        after = self.sample()
        return {
            'bytes_read': after['rd_bytes'] - self.before['rd_bytes'],
            'bytes_written': after['wr_bytes'] - self.before['wr_bytes'],
            'stored_delta': after['stored'] - self.before['stored'],
        }

    def __exit__(self, *exc):
        return False


def _snapshot(cloud, guest, kernel, ramdisk, tag, volume_type, undo):
    """Guest volume (with the boot properties) and its snapshot."""
    vol = cloud.guest_volume(guest, 'ms-ssrc-%s-%s' % (volume_type, tag),
                             volume_type)
    undo.append(('volume', 'delete', vol))
    # Stock servers boot from the volume: Nova reads the kernel, ramdisk
    # and command line from its image metadata (copied to snapshots and
    # to the volumes made from them). Nova refuses to boot from a snapshot
    # of a volume not marked bootable ("Block Device ... is not bootable").
    cloud.openstack('volume', 'set', vol, '--bootable',
                    '--image-property', 'kernel_id=%s' % kernel,
                    '--image-property', 'ramdisk_id=%s' % ramdisk,
                    '--image-property',
                    'os_command_line=%s' % cloud_mod.COMMAND_LINE,
                    parse=False)
    snap = cloud.openstack('volume', 'snapshot', 'create', '--volume', vol,
                           'ms-ssnap-%s-%s' % (volume_type, tag))['id']
    undo.append(('volume', 'snapshot', 'delete', snap))
    cloud.wait_status('volume snapshot', snap)
    return vol, snap


def _boot(cloud, name, count, create_args, guest):
    started = time.monotonic()
    cloud.openstack('server', 'create', '--flavor', 'ms.tiny', '--nic',
                    'none', '--min', str(count), '--max', str(count),
                    *create_args, name, parse=False, timeout=3600)

    # ``server create --wait`` with --min/--max waits for one server
    # only (seen here: it returned with one still spawning): poll all.
    def all_active():
        servers = cloud.servers(name)
        bad = [s for s in servers if s['Status'] == 'ERROR']
        if bad:
            raise ScenarioError('servers in ERROR: %s' % bad)
        return servers if len(servers) == count and all(
            s['Status'] in ('ACTIVE', 'SHUTOFF') for s in servers) else None
    servers = cloud.wait_for('%d servers %s ACTIVE' % (count, name),
                             all_active, timeout=3600, interval=2)
    active = time.monotonic() - started
    cloud.check_consoles(servers, guest.payload_sha256)
    return servers, active


def _delete_servers(cloud, servers):
    if servers:
        cloud.openstack('server', 'delete', '--wait',
                        *[s['ID'] for s in servers], parse=False,
                        timeout=1800)


def _fastboot(cloud, guest, kernel, ramdisk, snap, count, tag, tmp, undo):
    with _Window(cloud.layout) as window:
        t0 = time.monotonic()
        origin = cloud.openstack(
            'volume', 'create', '--snapshot', snap, '--size',
            str(cloud.size_gib(guest)), '--type', cinder.MULTIATTACH_TYPE,
            '--property', 'fastboot_cacheable=true',
            'ms-sorigin-' + tag)['id']
        undo.append(('volume', 'delete', origin))
        cloud.wait_status('volume', origin)
        stub = os.path.join(tmp, 'stub.raw')
        with open(stub, 'wb') as f:
            f.write(b'\0' * 512)
        image = cloud.openstack(
            'image', 'create', 'ms-sfb-' + tag, '--disk-format', 'raw',
            '--container-format', 'bare', '--file', stub,
            '--property', 'fastboot_origin_volume=%s' % origin,
            '--property', 'kernel_id=%s' % kernel,
            '--property', 'ramdisk_id=%s' % ramdisk,
            '--property', 'os_command_line=%s' % cloud_mod.COMMAND_LINE)[
                'id']
        undo.append(('image', 'delete', image))
        setup = time.monotonic() - t0
        servers, active = _boot(cloud, 'ms-sfb' + tag, count,
                                ['--image', image], guest)
        figures = window.finish()
    figures.update(volumes_created=1, seconds_to_active=round(active, 1),
                   origin_setup_seconds=round(setup, 1),
                   hosts=sorted({s['Host'] for s in servers}))
    _delete_servers(cloud, servers)
    return figures


def _stock(cloud, guest, snap, count, tag, label):
    size = cloud.size_gib(guest)
    bdm = ('source_type=snapshot,uuid=%s,destination_type=volume,'
           'boot_index=0,volume_size=%d,delete_on_termination=true'
           % (snap, size))
    with _Window(cloud.layout) as window:
        servers, active = _boot(cloud, 'ms-s%s%s' % (label[6:9], tag),
                                count, ['--block-device', bdm], guest)
        figures = window.finish()
    volumes = []
    for server in servers:
        attached = cloud.openstack('server', 'show', server['ID'])[
            'volumes_attached']
        ids = [a['id'] for a in attached] if isinstance(attached, list) \
            else [attached.split("'")[1]] if attached else []
        if len(ids) != 1:
            raise ScenarioError('server %s has volumes %r, want one' % (
                server['ID'], attached))
        vol = cloud.openstack('volume', 'show', ids[0])
        if vol['status'] != 'in-use' or str(vol['size']) != str(size):
            raise ScenarioError('volume %s of %s: %s, %s GiB' % (
                ids[0], server['ID'], vol['status'], vol['size']))
        volumes.append(ids[0])
    figures.update(volumes_created=len(set(volumes)),
                   seconds_to_active=round(active, 1),
                   hosts=sorted({s['Host'] for s in servers}))
    _delete_servers(cloud, servers)
    # delete_on_termination: Nova deletes each server's volume.
    for vol in volumes:
        cloud.wait_for('volume %s deleted' % vol,
                       lambda v=vol: cloud.gone('volume', v), timeout=600)
    figures['volumes_left'] = 0
    return figures


def _ratio(a, b):
    return round(a / b, 4) if b else None


def ratios(figures):
    fast = figures['fastboot']
    out = {}
    for way in ('stock_clone', 'stock_flatten'):
        stock = figures[way]
        out[way] = {key: _ratio(fast[key], stock[key]) for key in (
            'volumes_created', 'bytes_read', 'bytes_written',
            'seconds_to_active')}
    return out


def compare(stack, count=4, log=print):
    """Boot ``count`` servers the three ways; the figures (a dict).

    Writes them as JSON to ``$MINISTACK_STOCK_REPORT`` (default
    ``<run dir>/stock-comparison.json``) and returns them.
    """
    cloud = cloud_mod.Cloud(stack, log=log)
    ensure_types(cloud)
    guest, kernel, ramdisk = cloud.ensure_guest()
    tag = uuid.uuid4().hex[:8]
    undo = []
    figures = {'count': count, 'load_average_start': os.getloadavg()}
    domains_before = cloud.domains()
    with tempfile.TemporaryDirectory(prefix='fbms-') as tmp:
        try:
            _src, snap = _snapshot(cloud, guest, kernel, ramdisk, tag,
                                   'ms-stock-clone', undo)
            log('stock comparison: fastboot, %d servers' % count)
            figures['fastboot'] = _fastboot(cloud, guest, kernel, ramdisk,
                                            snap, count, tag, tmp, undo)
            log('stock comparison: stock, RBD clones')
            figures['stock_clone'] = _stock(cloud, guest, snap, count, tag,
                                            'stock_clone')
            _src, flat_snap = _snapshot(cloud, guest, kernel, ramdisk, tag,
                                        'ms-stock-flatten', undo)
            log('stock comparison: stock, flattened copies')
            figures['stock_flatten'] = _stock(cloud, guest, flat_snap, count,
                                              tag, 'stock_flatten')
        finally:
            _delete_servers(cloud, [
                s for s in cloud.openstack('server', 'list', '--all-projects',
                                           user='admin')
                if s['Name'].startswith('ms-s') and tag in s['Name']])
            for args in reversed(undo):
                cloud.openstack(*args, parse=False, check=False,
                                timeout=600)
    if cloud.domains() != domains_before:
        raise ScenarioError('libvirt domains left: %s' % (
            cloud.domains()))
    figures['load_average_end'] = os.getloadavg()
    working_set = figures['stock_clone']['bytes_read'] / count
    figures['boot_working_set_bytes'] = int(working_set)
    figures['fastboot_origin_bytes_vs_n_working_sets'] = _ratio(
        figures['fastboot']['bytes_read'], count * working_set)
    figures['ratios'] = ratios(figures)
    path = report_path(stack)
    with open(path, 'w') as f:
        json.dump(figures, f, indent=2, sort_keys=True)
    figures['report'] = path
    log(table(figures))
    return figures


def table(figures):
    """The figures as a text table (what the test and the demo print)."""
    rows = ['%-14s %8s %14s %14s %10s' % ('way', 'volumes', 'read bytes',
                                          'written bytes', 's->ACTIVE')]
    for way in ('fastboot', 'stock_clone', 'stock_flatten'):
        f = figures[way]
        rows.append('%-14s %8d %14d %14d %10.1f' % (
            way, f['volumes_created'], f['bytes_read'], f['bytes_written'],
            f['seconds_to_active']))
    for way, r in figures['ratios'].items():
        rows.append('fastboot/%s: %s' % (way, ', '.join(
            '%s %s' % kv for kv in r.items())))
    rows.append('fastboot origin read / (%d x working set %d B): %s' % (
        figures['count'], figures['boot_working_set_bytes'],
        figures['fastboot_origin_bytes_vs_n_working_sets']))
    rows.append('load average %s -> %s' % (
        figures['load_average_start'], figures['load_average_end']))
    return '\n'.join(rows)
