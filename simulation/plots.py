"""PNG plots of a bench result (matplotlib, no display needed)."""

import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {'fastboot': 'fastboot (tree of lazy caches)',
          'full_copy': "full copy per host (Nova's image cache)",
          'shared': 'per-VM reads from a shared store (Ceph-like)',
          'virtman': 'VirtMan (binary tree, iSCSI attach)'}


def _by_alt(rows, scenario):
    out = {}
    for r in rows:
        if r['scenario'] == scenario:
            out.setdefault(r['alternative'], []).append(r)
    return {k: sorted(v, key=lambda r: r['hosts']) for k, v in out.items()}


def _loglog(ax, series, key, ylabel, title):
    for alt, rows in series.items():
        ax.plot([r['hosts'] for r in rows], [r[key] for r in rows],
                marker='o', label=LABELS.get(alt, alt))
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('hosts (10 VMs each)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7)


def write(result, directory):
    os.makedirs(directory, exist_ok=True)
    rows = result['scenarios']
    paths = []
    for scenario, what in (('scale', 'demo trace'),
                           ('scale-300MB', '300 MB read per boot')):
        series = _by_alt(rows, scenario)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        _loglog(ax, series, 'predicted_seconds', 'seconds to all booted',
                'Boot storm, 1 GbE, 15 GB image, %s' % what)
        path = os.path.join(directory, 'time-vs-hosts-%s.png' % scenario)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
        fig, ax = plt.subplots(figsize=(6, 4))
        _loglog(ax, series, 'origin_egress_bytes', 'origin egress (bytes)',
                'Origin egress, %s' % what)
        path = os.path.join(directory, 'egress-vs-hosts-%s.png' % scenario)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    fan = [r for r in rows if r['scenario'] == 'fanout']
    clu = [r for r in rows if r['scenario'] == 'cluster']
    if fan and clu:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        a1.plot([r['fanout'] for r in fan],
                [r['predicted_seconds'] for r in fan], marker='o')
        a1.set_xlabel('fan-out')
        a1.set_ylabel('seconds to all booted')
        a1.set_title('%d hosts, 300 MB boot' % fan[0]['hosts'])
        a1.grid(True, alpha=0.3)
        a2.plot([r['cluster_bytes'] // 1024 for r in clu],
                [r['origin_egress_bytes'] / 1e6 for r in clu], marker='o')
        a2.set_xscale('log', base=2)
        a2.set_xlabel('cache cluster (KiB)')
        a2.set_ylabel('origin egress (MB)')
        a2.set_title('%d hosts, demo trace' % clu[0]['hosts'])
        a2.grid(True, alpha=0.3)
        fig.tight_layout()
        path = os.path.join(directory, 'sweeps.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    cal = result.get('calibration')
    if cal:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        hosts = [c['hosts'] for c in cal]
        ax.plot(hosts, [c['measured_seconds'] for c in cal], 'o-',
                label='measured (netns testbed)')
        ax.plot(hosts, [c['predicted_seconds'] for c in cal], 's--',
                label='model')
        ax.set_xlabel('hosts (1 VM each, %s links)' % cal[0]['rate'])
        ax.set_ylabel('seconds to all booted')
        ax.set_title('Calibration')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(directory, 'calibration.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
