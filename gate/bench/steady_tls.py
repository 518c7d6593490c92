"""NBD TLS-PSK transport cost by cipher and request size.

One qemu-storage-daemon per configuration exports the same raw file on
loopback TCP: plain, TLS-PSK with QEMU's default priority (``NORMAL``),
with fastboot's ``export_tls_priority`` and with ChaCha20-Poly1305 only.
A ``qemu-io`` client (same priority as its server) reads the whole file
sequentially in 64 KiB, 1 MiB and 4 MiB requests; every repetition runs
every configuration back to back. The file is in the page cache, so the
figures are the transport's own cost: ratios are configuration seconds
over plain seconds (1.0 = free).

With a pre-shared key, TLS 1.3 can only use the SHA-256 cipher suites
(the PSK binder hash), so ``NORMAL`` skips AES-256-GCM and negotiates
ChaCha20-Poly1305, which on a host with hardware AES costs far more than
AES-128-GCM: the ``qemu-default`` row shows it, the ``fastboot`` row is
what the engine configures.
"""

import os
import shutil
import statistics
import subprocess
import tempfile
import time

from fastboot_nova.conf import qemu as qemu_conf

MiB = 1024 * 1024
PORT_BASE = 33300
REQUESTS = (('64K', 64 * 1024), ('1M', MiB), ('4M', 4 * MiB))


def _fastboot_priority():
    for opt in qemu_conf.qemu_opts:
        if opt.name == 'export_tls_priority':
            return opt.default
    raise LookupError('export_tls_priority')


def configurations():
    return (('plain', None), ('qemu-default', 'NORMAL'),
            ('fastboot', _fastboot_priority()),
            ('chacha20', 'NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305'))


def _serve(work, name, port, priority):
    pidfile = os.path.join(work, name + '.pid')
    argv = ['qemu-storage-daemon']
    tls = ''
    if priority:
        argv += ['--object', 'tls-creds-psk,id=t0,endpoint=server,dir=%s,'
                 'priority=%s' % (work, priority)]
        tls = ',tls-creds=t0'
    argv += ['--blockdev', 'driver=file,node-name=f,filename=%s,'
             'read-only=on' % os.path.join(work, 'image.raw'),
             '--nbd-server', 'addr.type=inet,addr.host=127.0.0.1,'
             'addr.port=%d%s' % (port, tls),
             '--export', 'type=nbd,id=e,node-name=f,name=img',
             '--pidfile', pidfile, '--daemonize']
    subprocess.run(argv, check=True, capture_output=True)
    return pidfile


def _read_seconds(work, port, priority, size_bytes, request):
    argv = ['qemu-io', '-r']
    opts = ('driver=raw,file.driver=nbd,file.server.type=inet,'
            'file.server.host=127.0.0.1,file.server.port=%d,'
            'file.export=img' % port)
    if priority:
        argv += ['--object', 'tls-creds-psk,id=t1,endpoint=client,dir=%s,'
                 'username=fastboot,priority=%s' % (work, priority)]
        opts += ',file.tls-creds=t1'
    for offset in range(0, size_bytes, request):
        argv += ['-c', 'read %d %d' % (offset, request)]
    argv += ['--image-opts', opts]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode or 'failed' in proc.stdout + proc.stderr:
        raise RuntimeError('qemu-io over %s: %s' % (
            priority or 'plain', (proc.stdout + proc.stderr)[-500:]))
    return seconds


def measure(size_mib=64, reps=3):
    work = tempfile.mkdtemp(prefix='fbsteady-tls-', dir='/tmp')
    pidfiles = []
    try:
        with open(os.path.join(work, 'image.raw'), 'wb') as f:
            for _ in range(size_mib):
                f.write(os.urandom(MiB))
        with open(os.path.join(work, 'keys.psk'), 'w') as f:
            f.write('fastboot:%s\n' % os.urandom(32).hex())
        os.chmod(os.path.join(work, 'keys.psk'), 0o600)
        configs = configurations()
        ports = {}
        for n, (name, priority) in enumerate(configs):
            ports[name] = PORT_BASE + n
            pidfiles.append(_serve(work, name, ports[name], priority))
        samples = {}
        for _rep in range(reps):
            for label, request in REQUESTS:
                for name, priority in configs:
                    samples.setdefault(label, {}).setdefault(
                        name, []).append(_read_seconds(
                            work, ports[name], priority, size_mib * MiB,
                            request))
        rows = []
        for label, by_config in samples.items():
            plain = statistics.median(by_config['plain'])
            row = {'request': label, 'plain_seconds': round(plain, 3)}
            for name, _priority in configs[1:]:
                med = statistics.median(by_config[name])
                row[name + '_seconds'] = round(med, 3)
                row[name + '_ratio'] = round(med / plain, 3)
            rows.append(row)
        return {'size_bytes': size_mib * MiB, 'reps': reps, 'rows': rows,
                'priorities': dict(configs[1:])}
    finally:
        for pidfile in pidfiles:
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), 15)
            except (OSError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)


def render(result):
    names = [n for n, _p in configurations()[1:]]
    lines = ['NBD TLS-PSK transport, %d MiB read sequentially on loopback, '
             'median of %d: seconds / plain seconds' % (
                 result['size_bytes'] // MiB, result['reps']),
             '  %-8s %9s %s' % ('request', 'plain s', ' '.join(
                 '%13s' % n for n in names))]
    for row in result['rows']:
        lines.append('  %-8s %9.3f %s' % (
            row['request'], row['plain_seconds'], ' '.join(
                '%12.2fx' % row[n + '_ratio'] for n in names)))
    return '\n'.join(lines)
