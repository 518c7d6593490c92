"""Runs INSIDE the kernel-test guest: export, multipath attach, failover.

One guest plays both hosts over loopback: the parent caches the origin
(``origin``, cache device ``cache``) and exports its cache device through
two nbd-servers (two paths); the child attaches both paths as one
dm-multipath device and uses it as the origin of its own cache group
(cache device ``cache2``). A server is then stopped in the middle of a
read: the read must finish with the right data through the other path.
"""

import fcntl
import os
import socket
import struct
import subprocess
import time

from tests.kernel import guest_runner as gr

PARENT_STATE = '/var/lib/fastboot/parent'
CHILD_STATE = '/var/lib/fastboot/child'
PORTS = (10809, 10810)
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up():
    """``ip link set lo up`` (the root file system has no iproute2)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack('16sH14x', b'lo', 0))
        flags = struct.unpack('16sH', ifr[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS,
                    struct.pack('16sH14x', b'lo', flags | IFF_UP))


def make_engine(state_path, cache):
    from oslo_config import cfg

    from fastboot_nova.conf import dm as dm_opts
    from fastboot_nova.conf import fastboot as fastboot_conf
    from fastboot_nova.storage.dm import engine as dm_engine

    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    dm_opts.register_opts(conf)
    conf([], project='fastboot')
    conf.set_override('cache_device', cache, 'fastboot_dm')
    # The state disk of this guest is small: a 64 MiB thin-pool fits it.
    conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
    return dm_engine.DmEngine(conf, state_path=state_path)


def read_sha_with(path, at_mib, action):
    """``(sha256, error)`` of ``path``; ``action()`` after ``at_mib`` MiB.

    Read in 1 MiB blocks, so the action lands in the middle of the read.
    """
    import hashlib
    gr.drop_caches()
    digest = hashlib.sha256()
    n = 0
    try:
        with open(path, 'rb', buffering=0) as f:
            while True:
                if n == at_mib:
                    action()
                block = f.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                n += 1
    except OSError as e:
        return None, '%s after %d MiB' % (e, n)
    return digest.hexdigest(), None


def timed(run, label, module, fname):
    """Record the seconds of each call of ``module.fname`` in run.info."""
    real = getattr(module, fname)

    def wrapper(*a, **kw):
        t = time.monotonic()
        try:
            return real(*a, **kw)
        finally:
            run.info.setdefault('seconds_' + label, []).append(
                round(time.monotonic() - t, 2))
    setattr(module, fname, wrapper)


def scenario_export(run, args):
    from fastboot_nova import exception
    import fastboot_nova.privsep.dm as dm
    import fastboot_nova.privsep.multipath as mp_priv
    import fastboot_nova.privsep.nbd as nbd
    from fastboot_nova.storage.dm import export as dm_export
    from fastboot_nova.storage.dm import multipath as dm_multipath

    loopback_up()
    parent = make_engine(PARENT_STATE, args['cache'])
    child = make_engine(CHILD_STATE, args['cache2'])
    run.step('setup')

    # -- parent: cache the origin and export it on two ports ---------------
    parent.add_image('img', args['origin'])
    run.step('parent_add_image')
    exporter = dm_export.NbdExporter(parent, '127.0.0.1', ['127.0.0.1/32'])
    exp = exporter.export('img', list(PORTS))
    servers = nbd.list_servers()
    run.info['servers'] = servers
    run.check('two_servers', len(servers) == 2, servers)
    run.step('export')

    # -- child: two paths, one multipath device ------------------------------
    attacher = dm_multipath.MultipathAttacher()
    for label, mod, fname in (('connect', nbd, 'connect'),
                              ('create_multipath', mp_priv,
                               'create_multipath')):
        timed(run, label, mod, fname)
    mpath = attacher.attach('img', exp.paths)
    run.step('attach')
    paths = attacher.paths('img')
    run.info['mpath_table'] = dm.table(attacher.dm_name('img')).strip()
    run.info['paths'] = paths
    run.check('two_paths', len(paths) == 2 and
              all(p.startswith('/dev/nbd') for p in paths), paths)
    run.check('mpath_reads_origin', gr.sha256_of(mpath) == args['sha'])
    status = attacher.status('img')
    run.info['status_after_read'] = status
    run.check('both_paths_active', [p['active'] for p in status] ==
              [True, True], status)
    run.step('mpath_read')

    # -- bad input: refused, nothing built ---------------------------------
    before = (sorted(n for n, _a, _b in dm.list_devices()),
              nbd.connected_devices(), nbd.list_servers())
    errors = {}
    for label, call in (
            ('attach_twice', lambda: attacher.attach('img', exp.paths)),
            ('mpath_not_block', lambda: mp_priv.create_multipath(
                'fbmp-x', ['/etc/passwd', paths[0]])),
            ('mpath_duplicate_path', lambda: mp_priv.create_multipath(
                'fbmp-x', [paths[0], paths[0]])),
            ('mpath_shell_name', lambda: mp_priv.create_multipath(
                'x;reboot', paths)),
            ('mpath_size_mismatch', lambda: mp_priv.create_multipath(
                'fbmp-x', [paths[0], args['cache2']])),
            ('server_bad_address', lambda: nbd.start_server(
                'x', args['origin'], '0.0.0.0;id', 10811, ['127.0.0.1'])),
            ('server_port_in_use', lambda: nbd.start_server(
                'x', args['origin'], '127.0.0.1', PORTS[0],
                ['127.0.0.1'])),
            ('server_no_allowed', lambda: nbd.start_server(
                'x', args['origin'], '127.0.0.1', 10811, [])),
            ('connect_no_export', lambda: nbd.connect(
                '127.0.0.1', PORTS[0], 'nosuchexport'))):
        try:
            call()
        except exception.FastbootException as e:
            errors[label] = type(e).__name__ + ': ' + str(e)
        else:
            errors[label] = None
    run.info['errors'] = errors
    run.check('bad_input_refused', all(errors.values()), errors)
    after = (sorted(n for n, _a, _b in dm.list_devices()),
             nbd.connected_devices(), nbd.list_servers())
    run.check('bad_input_nothing_built', after == before, [before, after])
    run.step('bad_input')

    # -- child cache group on the multipath device, one VM -----------------
    vm = child.create('vm1', 'img', mpath)
    run.check('child_vm_reads_origin', gr.sha256_of(vm.path) == args['sha'])
    gr.write_at(vm.path, b'CHILD-VM')
    run.check('child_vm_writes_own', gr.read_at(vm.path).startswith(
        b'CHILD-VM') and not gr.read_at(mpath).startswith(b'CHILD-VM'))
    run.step('child_vm')

    # -- failover: stop one parent server in the middle of a read ----------
    first = exp.paths[0][2]
    started = time.monotonic()
    sha, err = read_sha_with(mpath, 4, lambda: nbd.stop_server(first))
    run.info['failover_read_seconds'] = round(time.monotonic() - started, 2)
    run.check('read_survives_path_loss', sha == args['sha'] and not err,
              err)
    status = attacher.status('img')
    run.info['status_after_failover'] = status
    run.check('one_path_failed', sorted(p['active'] for p in status) ==
              [False, True], status)
    gr.write_at(vm.path, b'AFTER-FO', offset=2 << 20)
    run.check('child_vm_after_failover',
              gr.read_at(vm.path).startswith(b'CHILD-VM') and
              gr.read_at(vm.path, offset=2 << 20).startswith(b'AFTER-FO'))
    # The VM's whole disk: blocks never written still read the origin.
    sha_vm, err = read_sha_with(mpath, -1, lambda: None)
    run.check('mpath_still_reads_origin', sha_vm == args['sha'], err)
    run.step('failover')

    # -- teardown of the child, then every path gone: errors, no hang ------
    child.destroy('vm1')
    child.remove_image('img')
    second = exp.paths[1][2]
    nbd.stop_server(second)
    _sha, err = read_sha_with(mpath, -1, lambda: None)
    run.info['no_path_read'] = err
    run.check('no_path_read_fails', err is not None, err)
    detached = attacher.detach('img')
    run.info['detached'] = detached
    run.check('detach_disconnects', nbd.connected_devices() == [] and
              attacher.list() == [], nbd.connected_devices())
    run.check('unexport_idempotent', exporter.unexport('img') == [])
    parent.remove_image('img')
    # Through the privsep daemon lists come back as tuples.
    run.check('no_servers_left', not nbd.list_servers(),
              nbd.list_servers())
    run.check('no_dm_devices_left', not dm.list_devices(),
              dm.list_devices())
    run.check('no_loops_left', not gr.loops(), gr.loops())
    run.step('teardown')
    run.info['mpath_status_example'] = status
    run.info['ports'] = list(PORTS)
    run.info['used_nbd'] = detached
    run.info['child_state'] = os.listdir(CHILD_STATE)


# Under the state disk: the privsep daemon reads TLS files only from the
# configured paths or under [fastboot] state_path (/var/lib/fastboot).
TLS_DIR = '/var/lib/fastboot/tls'
TLS_PORTS = (10819, 10820)
PLAIN_PORTS = (10821, 10822)


def unpack_certs(device):
    """Extract the host test's PEM files (a tar on ``device``); keys 0600."""
    import tarfile
    os.makedirs(TLS_DIR, mode=0o700, exist_ok=True)
    with open(device, 'rb') as f, tarfile.open(fileobj=f) as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            data = tar.extractfile(member).read()
            path = os.path.join(TLS_DIR, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600 if name.endswith('.key') else 0o644)
            with os.fdopen(fd, 'wb') as out:
                out.write(data)
    return sorted(os.listdir(TLS_DIR))


def read_seconds(path):
    """Seconds to read ``path`` whole, page cache dropped first."""
    gr.drop_caches()
    started = time.monotonic()
    with open(path, 'rb', buffering=0) as f:
        while f.read(1 << 20):
            pass
    return time.monotonic() - started


def scenario_export_tls(run, args):
    """Mutually authenticated NBD over TLS: who is served, who is refused.

    ``certs`` is a tar of ca.pem, otherca.pem, server.pem/.key (the
    parent, CA-signed, subjectAltName 127.0.0.1), client.pem/.key (the
    child, CA-signed) and rogue.pem/.key (signed by the other CA).
    """
    from fastboot_nova import exception
    import fastboot_nova.privsep.dm as dm
    import fastboot_nova.privsep.nbd as nbd
    from fastboot_nova.storage.dm import export as dm_export
    from fastboot_nova.storage.dm import multipath as dm_multipath
    from fastboot_nova.storage.dm import tls as dm_tls

    def f(name):
        return os.path.join(TLS_DIR, name)

    loopback_up()
    run.info['cert_files'] = unpack_certs(args['certs'])
    parent = make_engine(PARENT_STATE, args['cache'])
    parent.add_image('img', args['origin'])
    run.step('setup')

    server_tls = dm_tls.TlsFiles(f('server.pem'), f('server.key'),
                                 f('ca.pem'))
    client_tls = dm_tls.TlsFiles(f('client.pem'), f('client.key'),
                                 f('ca.pem'))
    exporter = dm_export.NbdExporter(parent, '127.0.0.1', ['127.0.0.1/32'],
                                     tls=server_tls)
    exp = exporter.export('img', list(TLS_PORTS))
    with open(os.path.join(nbd.RUN_DIR, exp.paths[0][2] + '.conf')) as c:
        run.info['server_config'] = c.read()
    plain = dm_export.NbdExporter(parent, '127.0.0.1', ['127.0.0.1/32'])
    plain_exp = plain.export('img', list(PLAIN_PORTS))
    run.step('export')

    # -- the child with its CA-signed certificate: served ----------------
    attacher = dm_multipath.MultipathAttacher(tls=client_tls)
    timed(run, 'connect', nbd, 'connect')
    started = time.monotonic()
    mpath = attacher.attach('img', exp.paths)
    run.info['tls_attach_seconds'] = round(time.monotonic() - started, 2)
    run.check('tls_two_paths', len(attacher.paths('img')) == 2,
              attacher.paths('img'))
    run.check('tls_mpath_reads_origin', gr.sha256_of(mpath) == args['sha'])
    run.step('tls_attach')

    # -- refused: no TLS, other CA's certificate, untrusted server -------
    before = (sorted(n for n, _a, _b in dm.list_devices()),
              nbd.connected_devices(), nbd.list_servers())
    port, name = TLS_PORTS[0], exp.paths[0][2]
    rogue = dict(cert_file=f('rogue.pem'), key_file=f('rogue.key'),
                 ca_file=f('ca.pem'))
    errors = {}
    for label, call in (
            ('no_cert', lambda: nbd.connect('127.0.0.1', port, name)),
            ('other_ca_cert', lambda: nbd.connect('127.0.0.1', port, name,
                                                  **rogue)),
            ('server_not_trusted', lambda: nbd.connect(
                '127.0.0.1', port, name, cert_file=f('client.pem'),
                key_file=f('client.key'), ca_file=f('otherca.pem'))),
            ('wrong_hostname', lambda: nbd.connect(
                '127.0.0.1', port, name, cert_file=f('client.pem'),
                key_file=f('client.key'), ca_file=f('ca.pem'),
                tls_hostname='not-the-parent.example')),
            ('attach_other_ca', lambda: dm_multipath.MultipathAttacher(
                tls=dm_tls.TlsFiles(f('rogue.pem'), f('rogue.key'),
                                    f('ca.pem'))).attach('rogue',
                                                         exp.paths)),
            ('attach_no_tls', lambda: dm_multipath.MultipathAttacher(
                ).attach('notls', exp.paths)),
            ('config_injection', lambda: nbd.start_server(
                'x', args['origin'], '127.0.0.1', 10823, ['127.0.0.1'],
                cert_file=f('server.pem') + '\n[x]', key_file=f(
                    'server.key'), ca_file=f('ca.pem'))),
            ('missing_ca', lambda: nbd.start_server(
                'x', args['origin'], '127.0.0.1', 10823, ['127.0.0.1'],
                cert_file=f('server.pem'), key_file=f('server.key'),
                ca_file=None))):
        t = time.monotonic()
        try:
            call()
        except exception.FastbootException as e:
            errors[label] = '%s: %s (%.1fs)' % (type(e).__name__, e,
                                               time.monotonic() - t)
        else:
            errors[label] = None
    # nbd-client itself, TLS on (the CA given) but no client certificate:
    # the privsep entrypoint cannot even express it.
    free = sorted(d for d, used in nbd._nbd_state().items() if not used)[-1]
    try:
        proc = subprocess.run(
            ['nbd-client', '127.0.0.1', str(port), free, '-name', name,
             '-readonly', '-cacertfile', f('ca.pem')],
            capture_output=True, text=True, timeout=60)
        code, out = proc.returncode, (proc.stderr + proc.stdout).strip()
    except subprocess.TimeoutExpired:
        code, out = 'timeout', ''
    errors['tls_without_client_cert'] = (
        None if code == 0 else 'exit %s: %s' % (code, out[-300:]))
    if code == 0:
        subprocess.run(['nbd-client', '-d', free], check=False)
    run.info['refusals'] = errors
    run.check('refused', all(errors.values()), errors)
    after = (sorted(n for n, _a, _b in dm.list_devices()),
             nbd.connected_devices(), nbd.list_servers())
    run.check('refused_nothing_built', after == before, [before, after])
    # A key readable by others is refused before anything runs.
    os.chmod(f('client.key'), 0o644)
    try:
        dm_multipath.MultipathAttacher(tls=client_tls)
    except exception.ExportAuthError as e:
        run.info['loose_key'] = str(e)
        run.check('loose_key_refused', 'export_tls_key_file' in str(e), e)
    else:
        run.check('loose_key_refused', False, 'accepted')
    os.chmod(f('client.key'), 0o600)
    run.step('refusals')

    # -- cost of TLS: the same 16 MiB, parent cache warm, TLS vs plain ----
    plain_attacher = dm_multipath.MultipathAttacher()
    started = time.monotonic()
    plain_mpath = plain_attacher.attach('plain', plain_exp.paths)
    run.info['plain_attach_seconds'] = round(time.monotonic() - started, 2)
    run.check('plain_reads_origin', gr.sha256_of(plain_mpath) == args['sha'])
    tls_times, plain_times = [], []
    for _round in range(3):
        tls_times.append(read_seconds(mpath))
        plain_times.append(read_seconds(plain_mpath))
    run.info['tls_read_seconds'] = [round(x, 3) for x in tls_times]
    run.info['plain_read_seconds'] = [round(x, 3) for x in plain_times]
    run.info['tls_plain_ratio'] = round(min(tls_times) / min(plain_times),
                                        2)
    run.step('measure')

    # -- teardown ---------------------------------------------------------
    attacher.detach('img')
    plain_attacher.detach('plain')
    exporter.unexport('img')
    parent.remove_image('img')
    run.check('no_nbd_left', nbd.connected_devices() == [],
              nbd.connected_devices())
    run.check('no_servers_left', not nbd.list_servers(), nbd.list_servers())
    run.check('no_dm_devices_left', not dm.list_devices(),
              dm.list_devices())
    run.step('teardown')
