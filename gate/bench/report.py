"""Figures, ratios and the human-readable table of a benchmark run.

Pure functions only (no processes, no clock), so that the unit tests can
check every figure and every line of the table. Each ratio is fastboot's
figure divided by a baseline measured in the same run, never by a number
written down somewhere: a ratio below 1 means fastboot needed less.
"""

import statistics

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Bumped when a key of the JSON result changes meaning or goes away.
RESULT_VERSION = 1


def ratio(value, baseline):
    """``value / baseline``; None if either is unknown or baseline is 0.

    A ratio against nothing means nothing.
    """
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def summarize(samples):
    """Count, mean, median, min, max and stdev; None for no samples."""
    samples = list(samples)
    if not samples:
        return None
    return {
        'count': len(samples),
        'mean': statistics.fmean(samples),
        'median': statistics.median(samples),
        'min': min(samples),
        'max': max(samples),
        'stdev': statistics.stdev(samples) if len(samples) > 1 else 0.0,
    }


# -- formatting ------------------------------------------------------------

def fmt_bytes(n):
    """``1536`` -> ``'1.50 KiB'``; None -> ``'n/a'``."""
    if n is None:
        return 'n/a'
    for unit, size in (('GiB', GiB), ('MiB', MiB), ('KiB', KiB)):
        if abs(n) >= size:
            return '%.2f %s' % (n / size, unit)
    return '%d B' % n


def fmt_seconds(s):
    """Seconds with a unit that keeps 3 significant digits readable."""
    if s is None:
        return 'n/a'
    if abs(s) < 1e-3:
        return '%.1f us' % (s * 1e6)
    if abs(s) < 1:
        return '%.1f ms' % (s * 1e3)
    return '%.2f s' % s


def fmt_percent(fraction):
    """``0.0042`` -> ``'0.42 %'``."""
    if fraction is None:
        return 'n/a'
    return '%.2f %%' % (fraction * 100)


def fmt_ratio(r):
    """A ratio with 3 significant digits; below 1 also as a percentage.

    ``0.0023`` -> ``'0.0023 (0.23 %)'``, ``2.5`` -> ``'2.5'``.
    """
    if r is None:
        return 'n/a'
    text = '%.3g' % r
    if r < 1:
        text += ' (%s)' % fmt_percent(r)
    return text


# -- the result --------------------------------------------------------------

def build_result(params, storm, copies, snapshots, phase_seconds):
    """Assemble the JSON-ready result of a run, with every ratio.

    :param params: run parameters (``vms``, ``snapshots``, ``image_bytes``
        and whatever else describes the run).
    :param storm: what :func:`gate.bench.storm.run_fastboot`
        measured.
    :param copies: what :func:`gate.bench.storm.run_full_copies`
        measured.
    :param snapshots: what :func:`gate.bench.snapshots.run`
        measured.
    :param phase_seconds: wall seconds per phase of the run.
    """
    n_images = params['vms'] * params['image_bytes']
    engine = summarize(snapshots['engine_seconds'])
    bare = summarize(snapshots['bare_seconds'])
    later = engine['median'] if engine else None
    boots = storm['boot_seconds']
    return {
        'result_version': RESULT_VERSION,
        'params': dict(params),
        'origin_bytes': {
            'fastboot': storm['origin_bytes'],
            'full_copy': copies['origin_bytes'],
            'ratio': ratio(storm['origin_bytes'], copies['origin_bytes']),
            'n_images_bytes': n_images,
            'fastboot_fraction_of_n_images': ratio(storm['origin_bytes'],
                                                   n_images),
            'full_copy_fraction_of_n_images': ratio(copies['origin_bytes'],
                                                    n_images),
        },
        'provision_seconds': {
            'fastboot': storm['create_seconds'],
            'full_copy': copies['seconds'],
            'ratio': ratio(storm['create_seconds'], copies['seconds']),
        },
        'local_disk_bytes': {
            'fastboot': storm['local_disk_bytes'],
            'full_copy': copies['local_disk_bytes'],
            'ratio': ratio(storm['local_disk_bytes'],
                           copies['local_disk_bytes']),
        },
        'boots': {
            'total': storm['boots_total'],
            'ok': storm['boots_ok'],
            'checksum_ok': storm['checksums_ok'],
            'accel': storm['accel'],
            'boot_seconds': summarize(b for b in boots if b is not None),
            'storm_seconds': storm['storm_seconds'],
            'failures': storm.get('failures', []),
        },
        'snapshot_create_seconds': {
            'engine': engine,
            'bare_qemu_img': bare,
            'ratio_mean': ratio(engine and engine['mean'],
                                bare and bare['mean']),
            'ratio_median': ratio(engine and engine['median'],
                                  bare and bare['median']),
        },
        'cold_create_seconds': {
            'first': snapshots['cold_create_seconds'],
            'first_in_storm': storm.get('first_create_seconds'),
            'later_median': later,
            'ratio': ratio(snapshots['cold_create_seconds'], later),
            'ratio_in_storm': ratio(storm.get('first_create_seconds'),
                                    later),
        },
        'phase_seconds': dict(phase_seconds),
        'total_seconds': sum(phase_seconds.values()),
    }


def succeeded(result):
    """True if every guest of the storm booted and read the right data."""
    boots = result['boots']
    return boots['total'] > 0 and boots['ok'] == boots['checksum_ok'] == \
        boots['total']


# -- the table ------------------------------------------------------------

def _table(title, header, rows):
    """Aligned columns: the first left-aligned, the others right-aligned."""
    lines = [title]
    table = [header] + rows
    widths = [max(len(str(row[i])) for row in table)
              for i in range(len(header))]
    for row in table:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w)
                  for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append('  ' + '  '.join(cells).rstrip())
    return lines


def render(result):
    """The human-readable table of ``result`` (see :func:`build_result`)."""
    p = result['params']
    ob = result['origin_bytes']
    prov = result['provision_seconds']
    disk = result['local_disk_bytes']
    boots = result['boots']
    snap = result['snapshot_create_seconds']
    cold = result['cold_create_seconds']
    n = p['vms']
    out = [
        'fastboot benchmark: %d VMs, %d snapshot creates, image %s '
        '(%s allocated), cache clusters %s, accel %s' % (
            n, p['snapshots'], fmt_bytes(p['image_bytes']),
            fmt_bytes(p.get('image_allocated_bytes')),
            fmt_bytes(p.get('cluster_size')), boots['accel'] or 'n/a'),
        'every baseline is measured in this run; fastboot/baseline below 1 '
        'means fastboot needs less',
        '',
    ]
    boot = boots['boot_seconds'] or {}
    out += _table(
        '1. Boot storm of %d VMs from one origin' % n,
        ['', 'fastboot', 'full copy', 'fastboot/copy'],
        [['bytes read from the origin', fmt_bytes(ob['fastboot']),
          fmt_bytes(ob['full_copy']), fmt_ratio(ob['ratio'])],
         ['  share of %d x image size' % n,
          fmt_percent(ob['fastboot_fraction_of_n_images']),
          fmt_percent(ob['full_copy_fraction_of_n_images']), ''],
         ['time to provision %d disks' % n, fmt_seconds(prov['fastboot']),
          fmt_seconds(prov['full_copy']), fmt_ratio(prov['ratio'])],
         ['local disk used', fmt_bytes(disk['fastboot']),
          fmt_bytes(disk['full_copy']), fmt_ratio(disk['ratio'])]])
    out.append('  guests: %d/%d booted, %d/%d read the right payload; '
               'boot median %s, max %s; storm %s' % (
                   boots['ok'], boots['total'], boots['checksum_ok'],
                   boots['total'], fmt_seconds(boot.get('median')),
                   fmt_seconds(boot.get('max')),
                   fmt_seconds(boots['storm_seconds'])))
    for failure in boots.get('failures', []):
        out.append('  FAILED %s' % failure)
    out.append('')

    engine = snap['engine'] or {}
    bare = snap['bare_qemu_img'] or {}
    rows = [[stat, fmt_seconds(engine.get(stat)), fmt_seconds(bare.get(stat)),
             fmt_ratio(snap['ratio_' + stat]) if stat in ('mean', 'median')
             else '']
            for stat in ('mean', 'median', 'min', 'max', 'stdev')]
    out += _table(
        '2. Per-VM snapshot create, %d each, on a cached image' % (
            engine.get('count', 0)),
        ['', 'engine.create', 'qemu-img create', 'engine/bare'], rows)
    out.append('')

    out += _table(
        '3. First create (daemon start, image added to the cache group) '
        'vs later creates',
        ['', 'seconds', 'first/later'],
        [['first create (cold)', fmt_seconds(cold['first']),
          fmt_ratio(cold['ratio'])],
         ['  same, first VM of the storm (part 1)',
          fmt_seconds(cold.get('first_in_storm')),
          fmt_ratio(cold.get('ratio_in_storm'))],
         ['later creates (median of part 2)',
          fmt_seconds(cold['later_median']), '']])
    out.append('')
    phases = ', '.join('%s %s' % (k, fmt_seconds(v))
                       for k, v in result['phase_seconds'].items())
    out.append('Run took %s (%s)' % (fmt_seconds(result['total_seconds']),
                                     phases))
    return '\n'.join(out)
