"""A single-node Ceph in userspace: 1 mon, 1 mgr, 1 BlueStore OSD on a file.

What Cinder's RBD driver and QEMU's block-rbd read and write, with no
kernel module (no rbd, no nbd) and no systemd: every daemon runs in the
foreground from the run directory, on 127.0.0.1 (msgr v1 only, one port),
its logs, sockets, keyrings and data under it. The OSD's BlueStore is a
sparse file (4 GiB virtual), so ``down`` removes everything with the run
directory.

Quirks (measured, see ../shared/FACTS.md): pool size 1 needs
``mon_allow_pool_size_one``; ``bluestore_block_path`` must be outside the
OSD data directory (``<osd_data>/block`` gives ELOOP at mkfs); without
``mon_data_avail_warn`` a nearly full disk keeps the cluster in
HEALTH_WARN. Every client (admin, cinder) finds its keyring through
``keyring = <etc>/$cluster.$name.keyring``, so ``rbd_user`` plus the conf
path is all Cinder, the rbd CLI and QEMU need; no key is ever passed on a
command line.

Used by ``ministack up`` and, through :func:`bring_up` on a layout of its
own, by the functional test of the qemu backend's RBD origins.
"""

import base64
import json
import os
import struct
import time
import uuid

from ministack import proc

NAMES = ('ceph-mon', 'ceph-mgr', 'ceph-osd')
POOL = 'volumes'
CINDER_USER = 'cinder'
MON_ID = 'a'
MGR_ID = 'x'
OSD_ID = 0
#: Offset (from the port base) of the 40 ports the OSD and mgr bind.
OSD_PORT_OFFSET = 800


def etc_dir(layout):
    return layout.etc / 'ceph'


def conf_path(layout):
    return etc_dir(layout) / 'ceph.conf'


def keyring_path(layout, name):
    return etc_dir(layout) / ('ceph.%s.keyring' % name)


def mon_address(layout):
    """The monitor's one address: msgr v1 only, explicitly.

    ``monmaptool --add`` with a port other than 6789 records a v2 address,
    which a v1-only OSD never reaches (it loops on EAFNOSUPPORT).
    """
    return '[v1:127.0.0.1:%d]' % layout.port('ceph_mon')


def new_key():
    """A cephx secret (what ``ceph-authtool --gen-print-key`` prints).

    Encoded like Ceph's CryptoKey: type (1 = AES), creation time, then
    the 16 secret bytes.
    """
    now = time.time()
    raw = struct.pack('<HIIH', 1, int(now), int(now % 1 * 1e9), 16) + \
        os.urandom(16)
    return base64.b64encode(raw).decode()


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)


def _write_keyring(path, name, key, caps=()):
    lines = ['[%s]' % name, '\tkey = %s' % key]
    lines += ['\tcaps %s = "%s"' % cap for cap in caps]
    _write_private(path, '\n'.join(lines) + '\n')


def configure(layout):
    etc = etc_dir(layout)
    etc.mkdir(parents=True, exist_ok=True)
    data = layout.data('ceph')
    for sub in ('mon', 'mgr', 'osd', 'osd-block', 'run', 'crash'):
        (data / sub).mkdir(parents=True, exist_ok=True)
    fsid_file = data / 'fsid'
    if not fsid_file.exists():
        fsid_file.write_text(str(uuid.uuid4()))
    fsid = fsid_file.read_text().strip()
    options = {
        'fsid': fsid,
        'mon_initial_members': MON_ID,
        'mon_host': mon_address(layout),
        'ms_bind_msgr2': 'false',
        'public_addr': '127.0.0.1',
        # The OSD's and mgr's ports inside the ministack's range too
        # (Ceph's default is 6800-7300, shared with any other cluster).
        'ms_bind_port_min': layout.port_base + OSD_PORT_OFFSET,
        'ms_bind_port_max': layout.port_base + OSD_PORT_OFFSET + 39,
        'auth_cluster_required': 'cephx',
        'auth_service_required': 'cephx',
        'auth_client_required': 'cephx',
        'auth_allow_insecure_global_id_reclaim': 'false',
        'keyring': '%s/$cluster.$name.keyring' % etc,
        'run_dir': data / 'run',
        'crash_dir': data / 'crash',
        'log_file': '%s/$cluster-$name.log' % layout.logs,
        'mon_cluster_log_file': layout.logs / 'ceph-cluster.log',
        'mon_data': '%s/mon/$cluster-$id' % data,
        'mgr_data': '%s/mgr/$cluster-$id' % data,
        'osd_data': '%s/osd/$cluster-$id' % data,
        'osd_objectstore': 'bluestore',
        'bluestore_block_path': '%s/osd-block/$cluster-$id.block' % data,
        'bluestore_block_create': 'true',
        'bluestore_block_size': 4 * 1024 ** 3,
        'bluestore_cache_autotune': 'false',
        'osd_memory_target': 512 * 1024 ** 2,
        'osd_pool_default_size': 1,
        'osd_pool_default_min_size': 1,
        'mon_allow_pool_size_one': 'true',
        'mon_allow_pool_delete': 'true',
        'osd_crush_chooseleaf_type': 0,
        'mon_data_avail_warn': 2,
        'mon_data_avail_crit': 1,
        'mon_warn_on_pool_no_redundancy': 'false',
    }
    text = '[global]\n' + ''.join('%s = %s\n' % kv for kv in options.items())
    _write_private(conf_path(layout), text)
    return fsid


def _ceph(layout, *args, name='ceph-setup', timeout=120):
    proc.run(layout, name, ['ceph', '-c', conf_path(layout),
                            '--connect-timeout', '30', *args],
             timeout=timeout)


def ceph_output(layout, *args, timeout=60):
    return proc.output(['ceph', '-c', conf_path(layout),
                        '--connect-timeout', '30', *args], timeout=timeout)


def _mkfs_mon(layout, fsid):
    data = layout.data('ceph')
    mon_keyring = keyring_path(layout, 'mon.')
    _write_keyring(mon_keyring, 'mon.', new_key(), [('mon', 'allow *')])
    admin_key = new_key()
    admin_caps = [('mds', 'allow *'), ('mgr', 'allow *'),
                  ('mon', 'allow *'), ('osd', 'allow *')]
    _write_keyring(keyring_path(layout, 'client.admin'), 'client.admin',
                   admin_key, admin_caps)
    # The mon's initial keyring knows the admin too.
    seed = data / 'mon-seed.keyring'
    _write_private(seed, mon_keyring.read_text() + keyring_path(
        layout, 'client.admin').read_text())
    monmap = data / 'monmap'
    proc.run(layout, 'ceph-setup', [
        'monmaptool', '--create', '--clobber', '--addv', MON_ID,
        mon_address(layout), '--fsid', fsid, monmap])
    proc.run(layout, 'ceph-setup', [
        'ceph-mon', '-c', conf_path(layout), '--mkfs', '-i', MON_ID,
        '--monmap', monmap, '--keyring', seed])
    seed.unlink()


def _mkfs_osd(layout):
    """Register OSD 0 with its cephx key and make its BlueStore."""
    data = layout.data('ceph')
    osd_uuid = str(uuid.uuid4())
    key = new_key()
    secret = data / 'osd-new.json'
    _write_private(secret, json.dumps({'cephx_secret': key}))
    try:
        out = ceph_output(layout, 'osd', 'new', osd_uuid, '-i', secret)
    finally:
        secret.unlink()
    osd_id = int(out.strip())
    _write_keyring(keyring_path(layout, 'osd.%d' % osd_id),
                   'osd.%d' % osd_id, key)
    (data / 'osd' / ('ceph-%d' % osd_id)).mkdir(parents=True, exist_ok=True)
    proc.run(layout, 'ceph-setup', [
        'ceph-osd', '-c', conf_path(layout), '-i', osd_id, '--mkfs',
        '--osd-uuid', osd_uuid])
    return osd_id


def _start(layout, daemon, ident):
    proc.start(layout, daemon, [daemon, '-f', '-c', conf_path(layout),
                                '-i', ident])


def _osd_up(layout):
    def ready():
        stat = json.loads(ceph_output(layout, 'osd', 'stat', '-f', 'json'))
        return stat.get('num_up_osds', 0) >= 1
    return ready


def _pool_ready(layout):
    def ready():
        out = json.loads(ceph_output(layout, 'pg', 'stat', '-f', 'json'))
        states = out.get('pg_summary', out).get('num_pg_by_state', [])
        total = out.get('pg_summary', out).get('num_pgs', 0)
        active = sum(s['num'] for s in states
                     if s['name'].startswith('active+clean'))
        return total and active == total
    return ready


def bring_up(layout, pools=(POOL,), timeout=180):
    """Start (making them the first time) mon, mgr and OSD; idempotent.

    Then make ``pools`` (RBD-initialised) and the ``client.cinder`` user
    allowed on them, and wait until every PG is active+clean.
    """
    data = layout.data('ceph')
    fsid = configure(layout)
    first = not (data / 'mon' / ('ceph-' + MON_ID) / 'keyring').exists()
    if first:
        _mkfs_mon(layout, fsid)
    _start(layout, 'ceph-mon', MON_ID)
    proc.wait(layout, 'ceph-mon', proc.port_open(layout.port('ceph_mon')),
              timeout=timeout)
    if first:
        _ceph(layout, 'auth', 'get-or-create', 'mgr.' + MGR_ID,
              'mon', 'allow profile mgr', 'osd', 'allow *', 'mds', 'allow *',
              '-o', keyring_path(layout, 'mgr.' + MGR_ID))
        (data / 'mgr' / ('ceph-' + MGR_ID)).mkdir(exist_ok=True)
    _start(layout, 'ceph-mgr', MGR_ID)
    if first:
        _mkfs_osd(layout)
    _start(layout, 'ceph-osd', str(OSD_ID))
    proc.wait(layout, 'ceph-osd', _osd_up(layout), timeout=timeout,
              interval=1)
    if first:
        _ceph(layout, 'osd', 'set-require-min-compat-client', 'mimic')
        for pool in pools:
            _ceph(layout, 'osd', 'pool', 'create', pool, '8')
            proc.run(layout, 'ceph-setup', [
                'rbd', '-c', conf_path(layout), 'pool', 'init', pool])
        osd_caps = ','.join('profile rbd pool=%s' % p for p in pools)
        _ceph(layout, 'auth', 'get-or-create', 'client.' + CINDER_USER,
              'mon', 'profile rbd', 'osd', osd_caps,
              'mgr', ','.join('profile rbd pool=%s' % p for p in pools),
              '-o', keyring_path(layout, 'client.' + CINDER_USER))
    proc.wait(layout, 'ceph-osd', _pool_ready(layout), timeout=timeout,
              interval=1)
    for name in NAMES:
        if not proc.running(layout, name):
            raise proc.ServiceFailed(name, 'the process exited',
                                     proc.log_tail(layout, name))


def pool_stats(layout, pool=POOL):
    """Bytes and ops the OSD served for ``pool`` (``ceph df detail``)."""
    out = json.loads(ceph_output(layout, 'df', 'detail', '-f', 'json'))
    for p in out['pools']:
        if p['name'] == pool:
            return p['stats']
    raise KeyError(pool)


def stop(layout):
    for name in reversed(NAMES):
        proc.stop(layout, name)


# -- the ministack service interface -------------------------------------

NAME = 'ceph'


def up(stack):
    bring_up(stack.layout)


def wait(stack):
    """Nothing: :func:`up` returns with the pool ready."""


def down(stack):
    stop(stack.layout)
