"""The storm's table, JSON, PNG plots and the "what broke first" text."""

import json


COLUMNS = ('profile', 'mode', 'N', 'ok', 'fail', 'all-ACTIVE s', 'p50 s',
           'p99 s', 'peak DB conn', 'peak queue', 'CPU s (top 3)', 'clean')


def _row(r):
    top = sorted(r['cpu_s'].items(), key=lambda kv: -kv[1])[:3]
    return (r['profile'], r['mode'], str(r['servers']), str(r['active']),
            str(r['failed']), str(r['all_active_s'] or '-'),
            str(r['p50_s'] or '-'), str(r['p99_s'] or '-'),
            str(r['peak_db_connections']), str(r['peak_queue_messages']),
            ', '.join('%s %.0f' % (k.replace('nova-', ''), v)
                      for k, v in top),
            'yes' if r['cleanup']['clean'] else 'NO')


def table(results):
    rows = [COLUMNS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def broke_first(results):
    """One paragraph: which limit failed first under the stock defaults."""
    defaults = sorted((r for r in results if r['profile'] == 'defaults'),
                      key=lambda r: r['servers'])
    if not defaults:
        return 'No run with the stock defaults.'
    for r in defaults:
        if r['failed']:
            fault, n = next(iter(r['faults'].items()))
            tuned = [t for t in results if t['profile'] == 'tuned' and
                     t['servers'] == r['servers'] and t['mode'] == r['mode']]
            after = ('; tuned, the same storm had %d failures'
                     % tuned[0]['failed']) if tuned else ''
            return ('Under the stock defaults the first failures came at '
                    'N=%d (%s): %d of %d servers failed, most often with '
                    '"%s" (%d servers)%s.' % (
                        r['servers'], r['mode'], r['failed'], r['servers'],
                        fault, n, after))
    top = max(defaults, key=lambda r: r['servers'])
    return ('The stock defaults did not fail up to N=%d on %d computes; '
            'closest to a limit: peak DB connections %d (MariaDB '
            'max_connections 151), deepest RabbitMQ queue %d messages '
            '(%s).' % (top['servers'], top['computes'],
                       top['peak_db_connections'],
                       top['deepest_queue_depth'], top['deepest_queue']))


def write_json(path, document):
    with open(path, 'w') as f:
        json.dump(document, f, indent=2, default=str)


def plots(results, directory):
    """PNG plots (matplotlib, no display): one per figure against N."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    figures = (('all_active_s', 'time to all-ACTIVE (s)', 'all_active.png'),
               ('p99_s', 'per-server p99 (s)', 'p99.png'),
               ('peak_db_connections', 'peak DB connections',
                'db_connections.png'),
               ('peak_queue_messages', 'peak RabbitMQ messages queued',
                'queue_depth.png'),
               ('failed', 'failed servers', 'failures.png'))
    written = []
    series = sorted({(r['profile'], r['mode']) for r in results})
    for key, title, name in figures:
        fig, ax = plt.subplots(figsize=(6, 4))
        for profile, mode in series:
            pts = sorted((r['servers'], r[key]) for r in results
                         if r['profile'] == profile and r['mode'] == mode
                         and r[key] is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts],
                        marker='o', label='%s, %s' % (profile, mode))
        ax.set_xlabel('servers in the storm (N)')
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = directory / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    return written
