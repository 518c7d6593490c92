"""Figures, ratios and tables of the Nova benchmark.

Pure functions (no Nova, no clock), like :mod:`gate.bench.report`
whose helpers they use: each ratio is fastboot's figure divided by stock
Nova's, measured in the same run; below 1 means fastboot needed less.
"""

from gate.bench import report

#: Bumped when a key of the JSON result changes meaning or goes away.
RESULT_VERSION = 1

#: Figures compared as fastboot/stock.
RATIO_KEYS = ('volumes_created', 'bytes_copied', 'volume_bytes',
              'bytes_written', 'active_seconds', 'delete_seconds')

COPY_NOTE = ('copies are performed: each volume made from the snapshot is '
             'a qemu-img convert of a real file, and "bytes copied" is '
             'what it wrote (zero blocks skipped); a byte-for-byte backend '
             'copies the "volume bytes" instead')
DELETE_NOTE = ('"time to delete all" ends when Nova lists no server: stock '
               'deletes the volume of each server with it '
               '(delete_on_termination); fastboot keeps its shared volume '
               'and host cache for the next boot (removed afterwards, not '
               'timed)')
GUEST_NOTE = ("guests do not run (nova's fake libvirt): no guest I/O, so "
              'the fastboot cache holds metadata only; `tox -e bench` '
              'measures what real boots read')


def _with_written(mode):
    mode = dict(mode)
    mode['bytes_written'] = (mode['bytes_copied'] + mode['cache_bytes'] +
                             mode['overlay_bytes'])
    return mode


def build_result(params, runs, total_seconds):
    """The JSON-ready result: per N, both modes and their ratios.

    :param runs: list of ``{'count', 'stock', 'fastboot'}`` as measured by
        :mod:`gate.bench.novarun`.
    """
    out = []
    for run in runs:
        stock = _with_written(run['stock'])
        fast = _with_written(run['fastboot'])
        out.append({
            'count': run['count'],
            'stock': stock,
            'fastboot': fast,
            'ratios': {key: report.ratio(fast[key], stock[key])
                       for key in RATIO_KEYS},
        })
    return {
        'result_version': RESULT_VERSION,
        'params': dict(params),
        'runs': out,
        'notes': [COPY_NOTE, DELETE_NOTE, GUEST_NOTE],
        'total_seconds': total_seconds,
    }


def check(result):
    """What did not go as both modes must; empty if all is right."""
    problems = []
    for run in result['runs']:
        n = run['count']
        stock, fast = run['stock'], run['fastboot']
        for name, mode in (('stock', stock), ('fastboot', fast)):
            if mode['servers_active'] != n:
                problems.append('N=%d %s: %d/%d servers ACTIVE' % (
                    n, name, mode['servers_active'], n))
        if stock['volumes_created'] != n or stock['root_volumes'] != n:
            problems.append('N=%d stock: %d volumes created, %d root '
                            'volumes, expected %d' % (
                                n, stock['volumes_created'],
                                stock['root_volumes'], n))
        if stock['volumes_deleted'] != n:
            problems.append('N=%d stock: %d of %d volumes deleted' % (
                n, stock['volumes_deleted'], n))
        if fast['volumes_created'] != 1 or fast['root_volumes'] != 1:
            problems.append('N=%d fastboot: %d volumes created, %d root '
                            'volumes, expected 1' % (
                                n, fast['volumes_created'],
                                fast['root_volumes']))
        if fast['caches'] != fast['hosts_used']:
            problems.append('N=%d fastboot: %d host caches for %d hosts' % (
                n, fast['caches'], fast['hosts_used']))
        if fast['fastboot_disks'] != n:
            problems.append('N=%d fastboot: %d/%d servers on a fastboot '
                            'disk' % (n, fast['fastboot_disks'], n))
    return problems


def succeeded(result):
    return bool(result['runs']) and not check(result)


def _requests_text(fastboot_requests):
    if fastboot_requests == 'one':
        return ('one request for all servers (min_count=max_count=N) from '
                'a fastboot image naming the volume')
    if fastboot_requests == 'per-server':
        return 'one request per server booting from the volume'
    # Results from before --fastboot-requests.
    return 'requests as counted below'


def render(result):
    """The human-readable tables of ``result``."""
    p = result['params']
    out = [
        'fastboot Nova benchmark: in-process Nova, %d compute(s), '
        'FastBootDriver over fake libvirt, real qemu engine; boot step %s' % (
            p['hosts'], p.get('fastboot_boot', 'n/a')),
        'volume snapshot: %s (%s, %s virtual, %s allocated) in a %d GiB '
        'volume' % (p['image'], p['image_format'],
                    report.fmt_bytes(p['image_virtual_bytes']),
                    report.fmt_bytes(p['image_allocated_bytes']),
                    p['volume_size_gib']),
        'stock: a new volume per server from the snapshot (one request); '
        'fastboot: one shared cacheable multiattach volume from the '
        'snapshot, its copy counted and timed, then %s' % _requests_text(
            p.get('fastboot_requests')),
        'both measured in this run; fastboot/stock below 1 means fastboot '
        'needs less',
    ]
    if not p.get('nova_reshape_listing', True):
        out.append("Nova's per-claim allocation listing for reshapes "
                   '(quadratic in servers, unused by this driver) skipped '
                   'in both modes; --nova-as-is keeps it')
    out.append('')
    for run in result['runs']:
        n = run['count']
        s, f, r = run['stock'], run['fastboot'], run['ratios']
        rows = [
            ['servers ACTIVE', '%d/%d' % (s['servers_active'], n),
             '%d/%d' % (f['servers_active'], n), ''],
            ['API requests', s['api_requests'], f['api_requests'], ''],
            ['hosts used (host caches)', s['hosts_used'],
             '%d (%d)' % (f['hosts_used'], f['caches']), ''],
            ['volumes created', s['volumes_created'], f['volumes_created'],
             report.fmt_ratio(r['volumes_created'])],
            ['bytes copied (qemu-img convert)',
             report.fmt_bytes(s['bytes_copied']),
             report.fmt_bytes(f['bytes_copied']),
             report.fmt_ratio(r['bytes_copied'])],
            ['volume bytes (byte-for-byte copy)',
             report.fmt_bytes(s['volume_bytes']),
             report.fmt_bytes(f['volume_bytes']),
             report.fmt_ratio(r['volume_bytes'])],
            ['  + cache + overlays on disk', '',
             '%s + %s' % (report.fmt_bytes(f['cache_bytes']),
                          report.fmt_bytes(f['overlay_bytes'])), ''],
            ['bytes written in all', report.fmt_bytes(s['bytes_written']),
             report.fmt_bytes(f['bytes_written']),
             report.fmt_ratio(r['bytes_written'])],
            ['time to all ACTIVE', report.fmt_seconds(s['active_seconds']),
             report.fmt_seconds(f['active_seconds']),
             report.fmt_ratio(r['active_seconds'])],
            ['  of which sending the API requests',
             report.fmt_seconds(s.get('request_seconds')),
             report.fmt_seconds(f.get('request_seconds')), ''],
            ['  copying (summed over parallel copies)',
             report.fmt_seconds(s['copy_seconds']),
             report.fmt_seconds(f['copy_seconds']), ''],
            ['time to delete all', report.fmt_seconds(s['delete_seconds']),
             report.fmt_seconds(f['delete_seconds']),
             report.fmt_ratio(r['delete_seconds'])],
        ]
        out += report._table('N = %d servers' % n,
                             ['', 'stock', 'fastboot', 'fastboot/stock'],
                             rows)
        out.append('')
    for note in result['notes']:
        out.append('Note: ' + note + '.')
    for problem in check(result):
        out.append('FAILED ' + problem)
    out.append('Run took %s' % report.fmt_seconds(result['total_seconds']))
    return '\n'.join(out)
