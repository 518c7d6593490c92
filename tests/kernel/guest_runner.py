"""Runs INSIDE the kernel-test guest: drive the real DmEngine, print JSON.

Started by the guest's /init in a chroot of the Debian root file system,
with the source tree on /src (read-only 9p) and the state disk on
/var/lib/fastboot. Arguments are ``key=value`` (from ``ktest.key=value``
on the kernel command line):

- ``scenario``: ``engine`` (default), ``export``, ``export_tls``
  (:mod:`tests.kernel.guest_export`), ``smoke``, ``nomodule`` (booted
  without dm-cache), ``persist1`` / ``persist2`` (two boots on the same
  disks; ``stop=clean`` deactivates, ``stop=kill`` has the host kill QEMU
  after the result line) or ``bench`` (:mod:`tests.kernel.guest_bench`);
- ``type``: ``[fastboot_dm] snapshot_type``, ``thin`` (default) or
  ``snapshot``;
- ``privsep``: ``daemon`` (default: the real privsep-helper daemon, uid 0
  with CAP_SYS_ADMIN only) or ``inproc`` (client mode off);
- ``origin``, ``origin2``, ``cache``, ``small`` (a cache device too
  small for the origin): block devices;
- ``sha``, ``sha2``: sha256 of the two origins.

Prints one line ``FASTBOOT-KTEST-RESULT {json}``; every check is recorded
as ``checks[name] = [ok, detail]`` so the host test can show all of them.
"""

import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback

RESULT_TAG = 'FASTBOOT-KTEST-RESULT'
KILL_TAG = 'FASTBOOT-KTEST-KILL-NOW'
STATE_PATH = '/var/lib/fastboot/state'
OFFSET = 1 << 20
BLOCK = 4096


class Run:
    def __init__(self):
        self.checks = {}
        self.timings = {}
        self.info = {}
        self._t = time.monotonic()

    def check(self, name, ok, detail=None):
        self.checks[name] = [bool(ok), detail]
        if not ok:
            print('CHECK FAILED %s: %r' % (name, detail), flush=True)

    def step(self, name):
        now = time.monotonic()
        self.timings[name] = round(now - self._t, 3)
        self._t = now
        # Progress on the console: shows where a slow or hung run is.
        print('ktest step %s %.1fs' % (name, self.timings[name]),
              flush=True)


def drop_caches():
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('3\n')


def sha256_of(path):
    drop_caches()
    digest = hashlib.sha256()
    with open(path, 'rb', buffering=0) as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def read_at(path, offset=OFFSET, size=BLOCK):
    drop_caches()
    with open(path, 'rb', buffering=0) as f:
        f.seek(offset)
        return f.read(size)


def write_at(path, data, offset=OFFSET):
    data = data.ljust(BLOCK, b'\0')
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def ours(prefix):
    import fastboot_nova.privsep.dm
    return sorted(n for n, _a, _b in fastboot_nova.privsep.dm.list_devices()
                  if n.startswith(prefix))


def loops():
    import fastboot_nova.privsep.loop
    return fastboot_nova.privsep.loop.list_attached()


def make_engine(args, state_path=STATE_PATH):
    from oslo_config import cfg

    from fastboot_nova.conf import dm as dm_opts
    from fastboot_nova.conf import fastboot as fastboot_conf
    from fastboot_nova.storage.dm import engine as dm_engine

    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    dm_opts.register_opts(conf)
    conf([], project='fastboot')
    conf.set_override('cache_device', args['cache'], 'fastboot_dm')
    conf.set_override('snapshot_type', args.get('type', 'thin'),
                      'fastboot_dm')
    # The state disk is 256 MiB.
    conf.set_override('thin_pool_size_mib', 96, 'fastboot_dm')
    return dm_engine.DmEngine(conf, state_path=state_path)


def scenario_smoke(run, args):
    """The smallest proof: linear + snapshot through the privsep module.

    Names and files as an engine makes them: the privsep daemon acts only
    on ``fb-<id>-`` devices and files under the state path.
    """
    import fastboot_nova.privsep.dm as dm
    import fastboot_nova.privsep.loop as loop

    prefix = 'fb-00000000-'
    origin_name, snap_name = prefix + 'origin-smoke', prefix + 'vm-smoke'
    os.makedirs(STATE_PATH, exist_ok=True)
    cow = os.path.join(STATE_PATH, 'smoke.cow')
    with open(cow, 'wb') as f:
        f.truncate(64 << 20)
    origin = dm.create_linear(origin_name, [
        (args['origin'], 0, dm.device_sectors(args['origin']))])
    dev = loop.attach(cow)
    snap = dm.create_snapshot(snap_name, origin, dev, 16)
    run.check('smoke_table', 'snapshot' in dm.table(snap_name),
              dm.table(snap_name))
    write_at(snap, b'SMOKE')
    run.check('smoke_isolated', read_at(snap).startswith(b'SMOKE') and
              not read_at(origin).startswith(b'SMOKE'))
    dm.remove_device(snap_name)
    dm.remove_device(origin_name)
    loop.detach(dev)
    os.unlink(cow)
    run.check('smoke_clean', not ours(prefix), ours(prefix))
    smoke_refusals(run, dm, loop)
    if run.info.get('privsep') == 'daemon':
        privsep_capabilities(run)


def smoke_refusals(run, dm, loop):
    """The confinement for real.

    The guest's root file system disk (/dev/vda) and its mounted state
    disk (/dev/vdb) are refused, and so are a file outside the state path
    and a device-mapper device fastboot did not create.
    """
    from fastboot_nova.privsep import utils

    refusals = {}
    for label, call in (
            ('root_disk', lambda: dm.create_linear(
                'fb-00000000-origin-evil', [('/dev/vda', 0, 8)])),
            ('state_disk', lambda: dm.create_linear(
                'fb-00000000-origin-evil', [('/dev/vdb', 0, 8)])),
            ('outside_file', lambda: loop.attach('/etc/passwd')),
            ('foreign_name', lambda: dm.remove_device('vg0-lv0'))):
        try:
            call()
            refusals[label] = 'accepted'
        except utils.Refused as e:
            refusals[label] = str(e)
    run.info['refusals'] = refusals
    run.check('smoke_refusals', all(v != 'accepted'
                                     for v in refusals.values()), refusals)


def privsep_capabilities(run):
    """The privsep daemon holds CAP_SYS_ADMIN and nothing else."""
    from oslo_privsep import capabilities as caps

    import fastboot_nova.privsep
    wanted = 0
    for cap in fastboot_nova.privsep.CAPABILITIES:
        wanted |= 1 << cap
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmdline = f.read().split(b'\0')
            with open('/proc/%s/status' % pid) as f:
                status = dict(line.split(':', 1) for line in f
                              if ':' in line)
        except OSError:
            continue
        if any(b'privsep-helper' in part for part in cmdline[:2]):
            found[pid] = {k: int(status[k].strip(), 16)
                          for k in ('CapEff', 'CapPrm', 'CapInh')}
            found[pid]['uid'] = status['Uid'].split()[0]
    run.info['privsep_daemons'] = {
        pid: {k: hex(v) if isinstance(v, int) else v for k, v in c.items()}
        for pid, c in found.items()}
    run.check('privsep_daemon_running', len(found) == 1, found)
    run.check('privsep_daemon_only_sys_admin',
              all(c['CapEff'] == wanted and c['CapPrm'] == wanted and
                  c['CapInh'] == 0 for c in found.values()),
              run.info['privsep_daemons'])
    run.info['cap_sys_admin_bit'] = caps.CAP_SYS_ADMIN


def scenario_engine(run, args):
    from fastboot_nova import exception
    import fastboot_nova.privsep.dm as dm
    from fastboot_nova.storage.dm import engine as dm_engine

    eng = make_engine(args)
    prefix = eng.prefix
    run.step('engine_init')

    # -- group add, cache on ----------------------------------------------
    d1 = eng.create('vm1', 'img', args['origin'])
    run.step('create_vm1_and_image')
    expected = sorted(eng._image_devices('img') + [eng.dm_name('vm', 'vm1')])
    if args.get('type', 'thin') == 'thin':
        expected = sorted(expected + [eng.dm_name('pool', 'thin')])
    run.check('devices_after_add', ours(prefix) == expected, ours(prefix))
    cache_table = dm.table(eng.dm_name('cache', 'img'))
    run.info['cache_table'] = cache_table.strip()
    run.info['vm1_table'] = dm.table(eng.dm_name('vm', 'vm1')).strip()
    run.check('cache_target', ' cache ' in cache_table and
              ' smq ' in cache_table and 'writethrough' in cache_table,
              cache_table)
    run.check('vm1_reads_origin', sha256_of(d1.path) == args['sha'])
    run.check('cache_reads_origin',
              sha256_of(eng.dm_path(eng.dm_name('cache', 'img'))) ==
              args['sha'])
    stats = eng.cache_stats('img')
    run.info['cache_stats_after_reads'] = stats
    run.check('cache_in_path', stats and
              stats['read_hits'] + stats['read_misses'] > 0, stats)
    run.step('reads_through_cache')

    # -- write isolation ----------------------------------------------------
    d2 = eng.create('vm2', 'img', args['origin'])
    write_at(d1.path, b'VM1-DATA')
    write_at(d2.path, b'VM2-DATA')
    run.check('vm1_sees_own', read_at(d1.path).startswith(b'VM1-DATA'))
    run.check('vm2_sees_own', read_at(d2.path).startswith(b'VM2-DATA'))
    run.check('origin_untouched', sha256_of(args['origin']) == args['sha'])
    run.check('cache_untouched',
              sha256_of(eng.dm_path(eng.dm_name('cache', 'img'))) ==
              args['sha'])
    run.info['disks'] = [[d.name, d.written_bytes] for d in eng.list()]
    run.check('written_bytes', len(run.info['disks']) == 2 and
              all(d.written_bytes > 0 for d in eng.list()),
              run.info['disks'])
    run.step('write_isolation')

    # -- bad input against the real kernel ----------------------------------
    before = ours(prefix)
    errors = {}
    for label, call in (
            ('double_create', lambda: eng.create('vm1', 'img',
                                                 args['origin'])),
            ('missing_device', lambda: eng.create('vm9', 'img9',
                                                  '/dev/vdz')),
            ('bad_name', lambda: eng.create('vm;rm', 'img',
                                            args['origin'])),
            ('priv_bad_name', lambda: dm.create_linear(
                'x y', [(args['origin'], 0, 8)])),
            ('priv_bad_path', lambda: dm.create_linear(
                eng.dm_name('origin', 'bad'), [('/etc/passwd', 0, 8)])),
            ('priv_existing', lambda: dm.create_linear(
                eng.dm_name('vm', 'vm1'), [(args['origin'], 0, 8)]))):
        try:
            call()
        except exception.FastbootException as e:
            errors[label] = type(e).__name__ + ': ' + str(e)
        else:
            errors[label] = None
    run.info['errors'] = errors
    run.check('bad_input_refused', all(errors.values()), errors)
    run.check('bad_input_nothing_built', ours(prefix) == before,
              ours(prefix))
    run.step('bad_input')

    # -- persistence across a re-create -------------------------------------
    used_before = eng.cache_stats('img')['used_blocks']
    eng.deactivate()
    run.check('deactivated', ours(prefix) == [] and not [
        d for d, b in loops() if b.startswith(eng.cow_dir)],
        [ours(prefix), loops()])
    run.step('deactivate')
    eng2 = make_engine(args)
    report = eng2.reconcile()
    run.info['reconcile'] = {k: v for k, v in vars(report).items() if v}
    run.check('restored', report.restored_images == ['img'] and
              report.restored_vms == ['vm1', 'vm2'], run.info['reconcile'])
    run.check('vm1_persisted', read_at(d1.path).startswith(b'VM1-DATA'))
    run.check('vm2_persisted', read_at(d2.path).startswith(b'VM2-DATA'))
    stats = eng2.cache_stats('img')
    run.info['cache_used_blocks'] = [used_before, stats['used_blocks']]
    run.check('cache_warm_after_clean_restore',
              stats['used_blocks'] == used_before,
              run.info['cache_used_blocks'])
    run.check('reconcile_idempotent', eng2.reconcile().clean)
    run.step('recreate_from_state')

    # -- clone ----------------------------------------------------------------
    d3 = eng2.clone('vm1', 'vm3')
    run.check('clone_has_data', read_at(d3.path).startswith(b'VM1-DATA'))
    run.step('clone')

    if args.get('origin2'):
        add_remove_under_io(run, args, eng2, d1.path)

    # -- teardown, then no stale blocks for a new origin --------------------
    for vm in ('vm1', 'vm2', 'vm3'):
        eng2.destroy(vm)
    eng2.remove_image('img')
    run.check('teardown_clean', ours(prefix) == [] and
              os.listdir(eng2.cow_dir) == [] and
              eng2.state.read()['images'] == {} and
              eng2.state.read()['vms'] == {},
              [ours(prefix), os.listdir(eng2.cow_dir)])
    run.step('teardown')
    if args.get('origin2'):
        d4 = eng2.create('vm4', 'img2', args['origin2'])
        entry = eng2.state.read()['images']['img2']
        run.info['img2_cache_start'] = entry['cache']['start']
        run.check('new_origin_no_stale_blocks',
                  sha256_of(d4.path) == args['sha2'] and
                  sha256_of(eng2.dm_path(eng2.dm_name('cache', 'img2'))) ==
                  args['sha2'])
        run.info['img2_stats'] = eng2.cache_stats('img2')
        eng2.destroy('vm4')
        eng2.remove_image('img2')
        run.step('second_origin')
    if args.get('small'):
        cache_too_small(run, args)
    if args.get('origin2'):
        origin_disappears(run, args, eng2)
    if args.get('type', 'thin') == 'thin':
        pool_full(run, args)
    run.check('no_dm_devices_left', not dm.list_devices(),
              dm.list_devices())
    run.check('no_loops_left', not loops(), loops())
    run.info['dm_engine_module'] = dm_engine.__file__


def _direct_reader(path, stop, out):
    """Read ``path`` in 64 KiB O_DIRECT blocks until ``stop``."""
    import mmap
    buf = mmap.mmap(-1, 1 << 16)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    size = os.lseek(fd, 0, os.SEEK_END)
    pos, last, gaps = 0, time.monotonic(), []
    try:
        while not stop.is_set():
            os.preadv(fd, [buf], pos)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            pos = (pos + len(buf)) % size
            out['reads'] = len(gaps)
    except OSError as e:
        out['error'] = str(e)
    finally:
        os.close(fd)
    gaps.sort()
    out['median_gap_s'] = gaps[len(gaps) // 2] if gaps else None
    out['max_gap_s'] = gaps[-1] if gaps else None


def add_remove_under_io(run, args, eng, vm_disk):
    """Add and remove another origin while a VM of ``img`` reads.

    Each image has its own devices, so ``img``'s tables are never
    reloaded and its reader keeps going; the gaps are reported, not
    asserted (TCG timing).
    """
    import threading

    import fastboot_nova.privsep.dm as dm
    img_devices = eng._image_devices('img')
    tables = {n: dm.table(n) for n in img_devices}
    stop, out = threading.Event(), {'reads': 0}
    reader = threading.Thread(target=_direct_reader,
                              args=(vm_disk, stop, out))
    reader.start()
    try:
        time.sleep(1)
        rounds = []
        for i in range(2):
            before = out['reads']
            t0 = time.monotonic()
            d = eng.create('vmx%d' % i, 'imgx', args['origin2'])
            ok = sha256_of(d.path) == args['sha2']
            eng.destroy('vmx%d' % i)
            eng.remove_image('imgx')
            rounds.append({'seconds': round(time.monotonic() - t0, 3),
                           'reads_meanwhile': out['reads'] - before,
                           'data_ok': ok})
    finally:
        stop.set()
        reader.join()
    run.info['add_remove_under_io'] = dict(out, rounds=rounds)
    run.check('other_origin_added_and_removed_under_io',
              len(rounds) == 2 and all(r['data_ok'] for r in rounds) and
              'imgx' not in eng.state.read()['images'], rounds)
    run.check('reader_never_failed', 'error' not in out, out)
    run.check('reader_kept_reading',
              all(r['reads_meanwhile'] > 0 for r in rounds), rounds)
    run.check('img_tables_untouched',
              {n: dm.table(n) for n in img_devices} == tables)
    run.step('add_remove_under_io')


def scenario_ssdgroup(run, args):
    """Two cache devices as one SSD group; the image's slice spans both."""
    import fastboot_nova.privsep.dm as dm

    # The small disk first: the image's data slice starts on it and ends
    # on the big one.
    group_args = dict(args, cache='%s,%s' % (args['small'], args['cache']))
    eng = make_engine(group_args)
    d1 = eng.create('vm1', 'img', args['origin'])
    group = eng.dm_name('ssd', 'group')
    table = dm.table(group)
    run.info['group_table'] = table.strip()
    run.check('group_over_two_devices', len(table.splitlines()) == 2,
              table)
    c = eng.state.read()['images']['img']['cache']
    small = dm.device_sectors(args['small'])
    run.check('slice_spans_both', c['start'] < small <
              c['start'] + c['meta_sectors'] + c['data_sectors'], c)
    run.check('vm_reads_origin', sha256_of(d1.path) == args['sha'])
    write_at(d1.path, b'GROUPED')
    run.step('ssdgroup_create')
    eng.deactivate()
    run.check('deactivated', not ours(eng.prefix), ours(eng.prefix))
    eng2 = make_engine(group_args)
    report = eng2.reconcile()
    run.info['reconcile'] = {k: v for k, v in vars(report).items() if v}
    run.check('group_restored', report.restored_images == ['img'] and
              dm.table(group) == table, run.info['reconcile'])
    run.check('vm_data_kept', read_at(d1.path).startswith(b'GROUPED'))
    drop_caches()
    run.check('cache_reads_origin',
              sha256_of(eng2.dm_path(eng2.dm_name('cache', 'img'))) ==
              args['sha'])
    run.step('ssdgroup_reconcile')
    eng2.destroy('vm1')
    eng2.remove_image('img')
    run.check('ssdgroup_teardown', not ours(eng2.prefix), ours(eng2.prefix))
    run.step('ssdgroup_teardown')


def _scenario_tree(run, args):
    from tests.kernel import guest_tree
    guest_tree.scenario_tree(run, args)


def scenario_export(run, args):
    from tests.kernel import guest_export
    guest_export.scenario_export(run, args)


def scenario_export_tls(run, args):
    from tests.kernel import guest_export
    guest_export.scenario_export_tls(run, args)


def cache_too_small(run, args):
    """A cache device smaller than the image: refused, nothing built."""
    from fastboot_nova import exception
    import fastboot_nova.privsep.dm as dm

    eng = make_engine(dict(args, cache=args['small']),
                      state_path=STATE_PATH + '-small')
    before = dm.list_devices()
    try:
        eng.create('vm1', 'img', args['origin'])
    except exception.CacheFull as e:
        run.info['cache_too_small'] = str(e)
        run.check('cache_too_small_refused', True)
    else:
        run.check('cache_too_small_refused', False, 'created')
    st = eng.state.read()
    run.check('cache_too_small_nothing_built',
              dm.list_devices() == before and st['images'] == {} and
              st['vms'] == {} and os.listdir(eng.cow_dir) == [] and
              not loops(), [dm.list_devices(), st, loops()])
    run.step('cache_too_small')


def _dmsetup(*argv, stdin=None):
    # The test harness plays the storage network here, with plain dmsetup.
    subprocess.run(['dmsetup'] + list(argv), input=stdin, text=True,
                   check=True, capture_output=True)


def origin_disappears(run, args, eng):
    """The origin fails under a running VM, then comes back.

    The origin is a dm-linear "LUN" the harness swaps for an error target:
    what a SAN path loss looks like to the host. Its uuid is a multipath
    map's (``mpath-<wwid>``), as an os-brick multipath origin has: the
    privsep daemon builds on no other device-mapper device it did not
    create.
    """
    import fastboot_nova.privsep.dm as dm

    sectors = dm.device_sectors(args['origin2'])
    lun_table = '0 %d linear %s 0\n' % (sectors, args['origin2'])
    _dmsetup('create', 'ktest-lun', '--uuid', 'mpath-ktest-lun',
             stdin=lun_table)
    lun = '/dev/mapper/ktest-lun'
    d = eng.create('vm5', 'img5', lun)
    write_at(d.path, b'VM5-DATA')
    _dmsetup('suspend', 'ktest-lun')
    _dmsetup('load', 'ktest-lun', stdin='0 %d error\n' % sectors)
    _dmsetup('resume', 'ktest-lun')
    try:
        read_at(d.path, 32 << 20, 1 << 20)
    except OSError as e:
        run.info['outage_uncached_read'] = str(e)
        run.check('outage_uncached_read_fails', e.errno == errno.EIO,
                  str(e))
    else:
        run.check('outage_uncached_read_fails', False,
                  'an uncached read returned data with the origin gone')
    run.check('outage_vm_data_readable',
              read_at(d.path).startswith(b'VM5-DATA'))
    status = dm.status(eng.dm_name('vm', 'vm5'))
    run.check('outage_snapshot_valid', 'Invalid' not in status, status)
    _dmsetup('suspend', 'ktest-lun')
    _dmsetup('load', 'ktest-lun', stdin=lun_table)
    _dmsetup('resume', 'ktest-lun')
    run.check('outage_over_reads_origin',
              read_at(d.path, 32 << 20, 1 << 20) ==
              read_at(args['origin2'], 32 << 20, 1 << 20))
    run.check('outage_over_vm_data',
              read_at(d.path).startswith(b'VM5-DATA'))
    run.info['outage_cache_status'] = dm.status(
        eng.dm_name('cache', 'img5')).strip()
    eng.destroy('vm5')
    eng.remove_image('img5')
    _dmsetup('remove', 'ktest-lun')
    run.step('origin_disappears')


def _write_mib(path, start_mib, mib):
    """Write ``mib`` MiB from ``start_mib``; return (MiB done, errno)."""
    import mmap
    buf = mmap.mmap(-1, 1 << 20)  # page-aligned, for O_DIRECT
    buf.write(b'\x5a' * (1 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    done = 0
    try:
        for i in range(mib):
            os.pwritev(fd, [buf], (start_mib + i) << 20)
            done += 1
        os.fsync(fd)
    except OSError as e:
        return done, e.errno
    finally:
        os.close(fd)
    return done, None


def pool_full(run, args):
    """VMs fill the thin-pool: writes fail with ENOSPC, no data is lost."""
    import fastboot_nova.privsep.dm as dm

    eng = make_engine(args, state_path=STATE_PATH + '-full')
    eng.conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
    a = eng.create('vma', 'img', args['origin'])
    b = eng.create('vmb', 'img', args['origin'])
    write_at(a.path, b'VMA-DATA')
    run.check('pool_full_first_fits', _write_mib(a.path, 8, 40) == (40, None))
    done, err = _write_mib(b.path, 8, 40)
    run.info['pool_full'] = {'written_mib': done,
                             'errno': errno.errorcode.get(err, err),
                             'pool': dm.status(eng.dm_name('pool', 'thin'))}
    run.check('pool_full_enospc', err == errno.ENOSPC and done < 40,
              run.info['pool_full'])
    run.check('pool_full_data_kept', read_at(a.path).startswith(b'VMA-DATA')
              and read_at(b.path, 8 << 20, 4096) == b'\x5a' * 4096)
    for vm in ('vma', 'vmb'):
        status = dm.status(eng.dm_name('vm', vm))
        run.check('pool_full_%s_active' % vm, 'Fail' not in status, status)
    full = eng.pool_status()
    run.check('pool_full_low_space', full['low_space'], full)
    run.step('pool_full')

    # Grown live, with both VMs open: the failed writes now work.
    grown = eng.grow_pool(128)
    run.info['pool_grown'] = grown
    run.check('pool_grown', grown['data_bytes'] == 128 << 20 and
              grown['mode'] == 'rw' and not grown['low_space'], grown)
    retry = _write_mib(b.path, 8, 40)
    run.info['pool_grown_write'] = retry
    run.check('pool_grown_takes_writes', retry == (40, None), retry)
    run.check('pool_grown_data_kept',
              read_at(a.path).startswith(b'VMA-DATA') and
              read_at(b.path, 47 << 20, 4096) == b'\x5a' * 4096)
    run.step('pool_grow')
    eng.destroy('vma')
    eng.destroy('vmb')
    eng.remove_image('img')


def scenario_nomodule(run, args):
    """Booted without dm-cache: a clear error, nothing built."""
    import fastboot_nova.privsep.dm as dm
    from fastboot_nova.storage.dm import engine as dm_engine

    targets = subprocess.run(['dmsetup', 'targets'], capture_output=True,
                             text=True).stdout
    run.info['targets'] = targets.split()
    run.check('no_cache_target', 'cache' not in targets.split(), targets)
    eng = make_engine(args)
    try:
        eng.create('vm1', 'img', args['origin'])
    except dm_engine.KernelSupportMissing as e:
        run.info['error'] = str(e)
        run.check('clear_error', 'cache' in str(e), str(e))
    else:
        run.check('clear_error', False, 'created without dm-cache')
    st = eng.state.read()
    run.check('nothing_built', not dm.list_devices() and not loops() and
              st['images'] == {} and st['vms'] == {} and
              os.listdir(eng.cow_dir) == [],
              [dm.list_devices(), loops(), st])


#: What the persistence scenarios write, by round: vm -> [(offset, seed,
#: length)]. Round 2 also overwrites a block vm2 wrote in round 1.
PERSIST_WRITES = {
    1: {'vm1': [(OFFSET, 'vm1-a', BLOCK), (8 << 20, 'vm1-b', 1 << 20)],
        'vm2': [(OFFSET, 'vm2-a', BLOCK), (40 << 20, 'vm2-b', 64 << 10)]},
    2: {'vm1': [(16 << 20, 'vm1-c', 256 << 10)],
        'vm2': [(OFFSET, 'vm2-c', BLOCK)]},
}
PERSIST_VMS = ('vm1', 'vm2')


def _pattern(seed, length):
    import random
    return random.Random(seed).randbytes(length)


def _writes(vm, rounds):
    return [w for r in range(1, rounds + 1) for w in PERSIST_WRITES[r][vm]]


def _write_round(eng, rnd):
    for vm in PERSIST_VMS:
        fd = os.open(eng.dm_path(eng.dm_name('vm', vm)), os.O_WRONLY)
        try:
            for off, seed, length in PERSIST_WRITES[rnd][vm]:
                os.pwrite(fd, _pattern(seed, length), off)
            # Flushed: this is the data that must survive a power loss.
            os.fsync(fd)
        finally:
            os.close(fd)


def _verify(path, origin, writes):
    """None if ``path`` reads as ``origin`` with ``writes`` applied."""
    drop_caches()
    with open(path, 'rb', buffering=0) as f, \
            open(origin, 'rb', buffering=0) as o:
        size = o.seek(0, os.SEEK_END)
        o.seek(0)
        pos = 0
        while pos < size:
            got = f.read(1 << 20)
            want = bytearray(o.read(1 << 20))
            for off, seed, length in writes:
                lo, hi = max(off, pos), min(off + length, pos + len(want))
                if lo < hi:
                    data = _pattern(seed, length)
                    want[lo - pos:hi - pos] = data[lo - off:hi - off]
            if got != bytes(want):
                return 'differs at %d' % pos
            pos += len(want)
    return None


def _check_round(run, eng, args, rounds, label):
    for vm in PERSIST_VMS:
        problem = _verify(eng.dm_path(eng.dm_name('vm', vm)),
                          args['origin'], _writes(vm, rounds))
        run.check('%s_%s' % (vm, label), problem is None, problem)


def scenario_persist1(run, args):
    """First boot: two VMs write and flush; then a clean or killed stop."""
    eng = make_engine(args)
    for vm in PERSIST_VMS:
        eng.create(vm, 'img', args['origin'])
    _write_round(eng, 1)
    _check_round(run, eng, args, 1, 'written')
    run.info['used_blocks'] = eng.cache_stats('img')['used_blocks']
    run.check('cache_used', run.info['used_blocks'] > 0, run.info)
    if args.get('stop') == 'clean':
        # What an orderly host shutdown does: the caches close cleanly.
        eng.deactivate()
        run.check('deactivated', not ours(eng.prefix), ours(eng.prefix))
    run.step('persist1')


def scenario_persist2(run, args):
    """A later boot on the same disks: a fresh engine finds everything.

    ``expect=warm|cold`` is what the cache must be after ``reconcile``;
    ``rounds`` how many rounds of writes the VMs must hold. With
    ``stop=kill`` the VMs then write the next round before the host kills
    the guest.
    """
    rounds = int(args.get('rounds', 1))
    eng = make_engine(args)
    run.check('nothing_active', not ours(eng.prefix), ours(eng.prefix))
    report = eng.reconcile()
    run.info['reconcile'] = {k: v for k, v in vars(report).items() if v}
    run.check('restored', report.restored_images == ['img'] and
              report.restored_vms == list(PERSIST_VMS) and
              not report.failed_images and not report.missing_disks,
              run.info['reconcile'])
    stats = eng.cache_stats('img')
    run.info['cache_after_reconcile'] = stats
    if args.get('expect') == 'warm':
        run.check('cache_warm', stats['used_blocks'] == int(args['used']),
                  [stats, args['used']])
    else:
        # Cold: no block of the old cache is trusted, none is dirty.
        run.check('cache_cold', stats['used_blocks'] == 0 and
                  stats['dirty'] == 0, stats)
    _check_round(run, eng, args, rounds, 'data_survived')
    run.check('cache_reads_origin',
              sha256_of(eng.dm_path(eng.dm_name('cache', 'img'))) ==
              args['sha'])
    run.check('reconcile_idempotent', eng.reconcile().clean)
    if args.get('stop') == 'kill':
        _write_round(eng, rounds + 1)
        _check_round(run, eng, args, rounds + 1, 'round%d' % (rounds + 1))
    run.step('persist2')


def main(argv):
    args = dict(a.split('=', 1) for a in argv if '=' in a)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run = Run()
    result = {'ok': False}
    started = time.monotonic()
    try:
        from oslo_config import cfg

        import fastboot_nova.privsep
        mode = args.get('privsep', 'daemon')
        if mode == 'inproc':
            fastboot_nova.privsep.sys_admin_pctxt.set_client_mode(False)
        else:
            cfg.CONF([], project='fastboot')
            cfg.CONF.set_override('helper_command', 'privsep-helper',
                                  group='fastboot_sys_admin')
        run.info['privsep'] = mode
        run.step('imports')
        from tests.kernel import guest_bench
        from tests.kernel import guest_brick
        {'engine': scenario_engine,
         'export': scenario_export,
         'tree': _scenario_tree,
         'export_tls': scenario_export_tls,
         'smoke': scenario_smoke,
         'ssdgroup': scenario_ssdgroup,
         'nomodule': scenario_nomodule,
         'persist1': scenario_persist1,
         'persist2': scenario_persist2,
         'bench': guest_bench.scenario_bench,
         'brick': guest_brick.scenario_brick,
         }[args.get('scenario', 'engine')](run, args)
        # A scenario that recorded no check proved nothing.
        result['ok'] = bool(run.checks) and all(
            ok for ok, _d in run.checks.values())
    except Exception:
        result['error'] = traceback.format_exc()
        print(result['error'], flush=True)
    result.update(checks=run.checks, timings=run.timings, info=run.info,
                  runner_seconds=round(time.monotonic() - started, 3))
    print('%s %s' % (RESULT_TAG, json.dumps(result, sort_keys=True,
                                            default=str)),
          flush=True)
    if args.get('stop') == 'kill':
        # The host kills QEMU on this line: no sync, no unmount.
        print(KILL_TAG, flush=True)
        time.sleep(3600)
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
