"""The batch timeline as a server-side SVG chart.

One horizontal bar per server, split into the phases the batch API
timeline reports, sorted by when the server's own work started, on one
time axis from the batch's acceptance; p50/p99 of the time to ACTIVE in
the title. No JavaScript and no library: the page works with scripts
off, and 500 bars are one small document (rows shrink to 2 px, labels
are kept in each bar's tooltip).
"""

import datetime
import math

from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

#: The API's phases (fastboot_nova/coordinator/batches/timeline.py), in
#: order, each drawn as the group that ENDS at it.
GROUP_OF = {
    'origin_ready': 'origin', 'requested': 'origin',
    'scheduled': 'scheduled',
    'block_device': 'cache', 'cache_attached': 'cache',
    'overlay_created': 'overlay',
    'ACTIVE': 'spawn',
    'ERROR': 'error',
}
PHASES = ('accepted', 'origin_ready', 'requested', 'scheduled',
          'block_device', 'cache_attached', 'overlay_created', 'ACTIVE',
          'ERROR')
GROUPS = (
    ('origin', _('queued / origin'), '#b0b7bf'),
    ('scheduled', _('scheduled'), '#5b9bd5'),
    ('cache', _('cache attach'), '#ed7d31'),
    ('overlay', _('overlay'), '#8e6cc0'),
    ('spawn', _('spawn'), '#70ad47'),
    ('error', _('error'), '#d9534f'),
)
COLOR = {key: color for key, _label, color in GROUPS}

WIDTH = 900
LABEL = 110
TOP = 46
AXIS = 28
LEGEND = 24


def parse_time(value):
    """The API's ``2026-12-03T12:00:00.123456Z`` (None stays None)."""
    if not value:
        return None
    if value.endswith('Z'):
        value = value[:-1]
    return datetime.datetime.fromisoformat(value)


def percentile(values, pct):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def rows(timeline):
    """One row per server: its segments in seconds from the batch start.

    ``[{'id', 'index', 'state', 'start', 'to_active', 'segments':
    [(group, phase, begin, end)]}]`` sorted by start (then index).
    """
    origin = parse_time(timeline.get('start'))
    result = []
    for server in timeline.get('servers') or []:
        times = {p: parse_time(t)
                 for p, t in (server.get('phases') or {}).items()
                 if p in PHASES}
        if origin is None and times:
            origin = min(times.values())
        ordered = sorted(((t, PHASES.index(p), p) for p, t in times.items()
                          if t is not None))
        segments = []
        for (t0, _i0, _p0), (t1, _i1, p1) in zip(ordered, ordered[1:],
                                                 strict=False):
            segments.append((GROUP_OF.get(p1, 'origin'), p1, t0, t1))
        result.append({'id': server.get('id'), 'index': server.get('index'),
                       'state': server.get('state'), 'times': times,
                       'segments': segments})
    for row in result:
        times = row.pop('times')
        row['segments'] = [(g, p, _secs(t0, origin), _secs(t1, origin))
                           for g, p, t0, t1 in row['segments']]
        own = [t for p, t in times.items()
               if p not in ('accepted', 'origin_ready')]
        row['start'] = _secs(min(own), origin) if own else 0.0
        row['to_active'] = (_secs(times['ACTIVE'], origin)
                            if 'ACTIVE' in times else None)
    result.sort(key=lambda r: (r['start'], r['index'] or 0))
    return result


def _secs(value, origin):
    if value is None or origin is None:
        return 0.0
    return max(0.0, (value - origin).total_seconds())


def summary(timeline):
    """``{'servers', 'active', 'p50', 'p99'}``: seconds to ACTIVE."""
    data = rows(timeline)
    to_active = [r['to_active'] for r in data if r['to_active'] is not None]
    return {'servers': len(data), 'active': len(to_active),
            'p50': percentile(to_active, 50),
            'p99': percentile(to_active, 99)}


def _fmt(seconds):
    return '-' if seconds is None else '%.1f s' % seconds


def _ticks(span):
    """About eight round tick steps over ``span`` seconds."""
    raw = span / 8.0
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short(name, size=18):
    """The end of a long server name (where batch names differ)."""
    return name if len(name) <= size else '\u2026' + name[-(size - 1):]


def render_svg(timeline, names=None):
    """The chart as a safe SVG string (empty-state text if no server)."""
    names = names or {}
    data = rows(timeline)
    stats = summary(timeline)
    if not data:
        return mark_safe(
            '<p class="fastboot-timeline-empty">%s</p>' % escape(
                _('No server has been requested yet.')))
    end = max([seg[3] for r in data for seg in r['segments']] + [1.0])
    count = len(data)
    bar = max(2, min(14, 600 // count))
    gap = 1 if bar < 6 else 3
    labels = bar >= 10
    plot = WIDTH - LABEL - 10
    height = TOP + count * (bar + gap) + AXIS + LEGEND

    def x(seconds):
        return LABEL + plot * seconds / end

    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="fastboot-timeline"'
           ' role="img" width="%d" height="%d" viewBox="0 0 %d %d">' % (
               WIDTH, height, WIDTH, height)]
    title = _('%(active)d of %(servers)d servers ACTIVE; time to ACTIVE: '
              'p50 %(p50)s, p99 %(p99)s') % {
        'active': stats['active'], 'servers': stats['servers'],
        'p50': _fmt(stats['p50']), 'p99': _fmt(stats['p99'])}
    out.append('<title>%s</title>' % escape(title))
    out.append('<text class="fastboot-timeline-title" x="%d" y="18" '
               'font-size="13" font-weight="bold">%s</text>' % (
                   LABEL, escape(title)))
    step = _ticks(end)
    axis_y = TOP + count * (bar + gap) + 4
    tick = 0.0
    while tick <= end + 1e-9:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                   'stroke="#e5e5e5"/>' % (x(tick), TOP - 4, x(tick), axis_y))
        out.append('<text x="%.1f" y="%d" font-size="10" '
                   'text-anchor="middle">%s</text>' % (
                       x(tick), axis_y + 12, escape('%g s' % tick)))
        tick += step
    for key, p in (('p50', stats['p50']), ('p99', stats['p99'])):
        if p is None:
            continue
        out.append('<line class="fastboot-%s" x1="%.1f" y1="%d" x2="%.1f" '
                   'y2="%d" stroke="#333" stroke-dasharray="4,3"/>' % (
                       key, x(p), TOP - 10, x(p), axis_y))
        out.append('<text x="%.1f" y="%d" font-size="10" '
                   'text-anchor="middle">%s</text>' % (
                       x(p), TOP - 12, escape(key)))
    for n, row in enumerate(data):
        y = TOP + n * (bar + gap)
        name = names.get(row['id']) or row['id'] or ''
        tip = ['%s (%s)' % (name, row['state'])]
        tip += ['%s %.2f s' % (phase, e - b)
                for _g, phase, b, e in row['segments']]
        out.append('<g class="fastboot-bar" data-server="%s"><title>%s'
                   '</title>' % (escape(row['id'] or ''),
                                 escape('; '.join(tip))))
        if labels:
            out.append('<text x="%d" y="%d" font-size="10" '
                       'text-anchor="end">%s</text>' % (
                           LABEL - 6, y + bar - 2, escape(_short(name))))
        for group, phase, begin, finish in row['segments']:
            out.append('<rect class="fastboot-phase-%s" data-phase="%s" '
                       'x="%.1f" y="%d" width="%.1f" height="%d" '
                       'fill="%s"/>' % (
                           group, escape(phase), x(begin), y,
                           max(0.5, x(finish) - x(begin)), bar,
                           COLOR[group]))
        out.append('</g>')
    legend_y = axis_y + AXIS
    lx = LABEL
    for _key, label, color in GROUPS:
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'
                   % (lx, legend_y - 9, color))
        out.append('<text x="%d" y="%d" font-size="11">%s</text>' % (
            lx + 14, legend_y, escape(label)))
        lx += 24 + 7 * len(str(label))
    out.append('</svg>')
    return mark_safe(''.join(out))
