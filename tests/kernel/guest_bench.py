"""Runs INSIDE the kernel-test guest: the dm backend benchmark.

Started by ``guest_runner.py scenario=bench``. Two parts, each with its
baseline measured in the same boot:

1. the real :class:`DmEngine`, once per ``snapshot_type``: per-VM create
   time, and O_DIRECT sequential and 4 KiB random read throughput through
   cache + VM volume, cold and warm, against the raw origin device;
2. the two per-VM copy-on-write designs over the same dm-cache, built with
   plain ``dmsetup`` (the harness owns this throwaway guest): a persistent
   dm-snapshot on a sparse file per VM, and a thin volume with the cache
   as external read-only origin in one thin-pool. Create time of the 1st
   and the K-th VM, reads, first and second writes, space per VM, discard,
   running out of space, and the origin failing during a first write.

Every figure is relative: the guest runs under TCG and its disks are host
files, so only ratios measured in one run mean anything.
"""

import errno
import fcntl
import mmap
import os
import random
import struct
import subprocess
import time

from tests.kernel import guest_runner as gr

MIB = 1 << 20
BLKDISCARD = 0x1277
#: dm-thin block: 128 sectors (64 KiB), the smallest the target allows.
THIN_BLOCK = 128
SNAP_CHUNK = 16
#: Most unmeasured passes that warm the cache before the warm pass.
WARM_PASSES_MAX = 6


def _dm(*argv, stdin=None, check=True):
    proc = subprocess.run(['dmsetup'] + list(argv), input=stdin, text=True,
                          capture_output=True, check=False)
    if check and proc.returncode:
        raise RuntimeError('dmsetup %s: %s' % (' '.join(argv),
                                               proc.stderr.strip()))
    return proc.stdout


def _losetup(path):
    return subprocess.run(['losetup', '--find', '--show', path], text=True,
                          capture_output=True, check=True).stdout.strip()


def _sectors(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END) // 512
    finally:
        os.close(fd)


def _sparse(path, size):
    with open(path, 'wb') as f:
        f.truncate(size)


# -- O_DIRECT I/O ----------------------------------------------------------

def seq_read(path, size, block=MIB):
    """MB/s of one O_DIRECT pass over the first ``size`` bytes."""
    gr.drop_caches()
    buf = mmap.mmap(-1, block)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        t = time.monotonic()
        for off in range(0, size, block):
            os.preadv(fd, [buf], off)
        return size / MIB / (time.monotonic() - t)
    finally:
        os.close(fd)


def rand_offsets(size, count, seed, block=4096):
    rng = random.Random(seed)
    return [rng.randrange(size // block) * block for _ in range(count)]


def rand_read(path, offsets, block=4096):
    """MB/s of O_DIRECT ``block`` reads at ``offsets``."""
    gr.drop_caches()
    buf = mmap.mmap(-1, block)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        t = time.monotonic()
        for off in offsets:
            os.preadv(fd, [buf], off)
        return len(offsets) * block / MIB / (time.monotonic() - t)
    finally:
        os.close(fd)


def write(path, offsets, block, seed='w'):
    """MB/s of O_DIRECT ``block`` writes at ``offsets``, then an fsync."""
    buf = mmap.mmap(-1, block)
    buf.write(random.Random(seed).randbytes(block))
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        t = time.monotonic()
        for off in offsets:
            os.pwritev(fd, [buf], off)
        os.fsync(fd)
        return len(offsets) * block / MIB / (time.monotonic() - t)
    finally:
        os.close(fd)


def try_write(path, offsets, block):
    """Write until an error; return (bytes written, errno or None)."""
    buf = mmap.mmap(-1, block)
    buf.write(b'\xa5' * block)
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    done = 0
    try:
        for off in offsets:
            os.pwritev(fd, [buf], off)
            done += block
        os.fsync(fd)
    except OSError as e:
        return done, errno.errorcode.get(e.errno, e.errno)
    finally:
        os.close(fd)
    return done, None


def readable(path, offset=0, length=4096):
    try:
        gr.read_at(path, offset, length)
        return True
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


def discard(path, length):
    fd = os.open(path, os.O_WRONLY)
    try:
        fcntl.ioctl(fd, BLKDISCARD, struct.pack('QQ', 0, length))
        return None
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
    finally:
        os.close(fd)


def _ratio(a, b):
    return round(a / b, 3) if b else None


# -- part 1: the engine ----------------------------------------------------

def engine_part(run, args, k, size, count, kind):
    eng = gr.make_engine(dict(args, type=kind),
                         state_path=gr.STATE_PATH + '-' + kind)
    origin = args['origin']
    res = {}
    offsets = rand_offsets(size, count, 'rand')

    def cache_counts():
        s = eng.cache_stats('img')
        return {k_: s[k_] for k_ in ('used_blocks', 'read_hits',
                                     'read_misses', 'promotions')}

    times = []
    for i in range(k):
        t = time.monotonic()
        eng.create('vm%d' % i, 'img', origin)
        times.append(time.monotonic() - t)
    res['create_first_with_image_s'] = round(times[0], 4)
    res['create_mean_s'] = round(sum(times[1:]) / (k - 1), 4)
    res['create_last_s'] = round(times[-1], 4)
    vm = eng.dm_path(eng.dm_name('vm', 'vm1'))

    def warm_up(read):
        # smq promotes blocks that are read again, in the background, not
        # on a first miss: repeat the pass until promotions stop.
        passes = 0
        while passes < WARM_PASSES_MAX:
            before = cache_counts()['promotions']
            read()
            passes += 1
            if cache_counts()['promotions'] == before:
                break
        return passes

    def hits_during(read):
        a = cache_counts()
        speed = read()
        b = cache_counts()
        hits = b['read_hits'] - a['read_hits']
        total = hits + b['read_misses'] - a['read_misses']
        return speed, round(hits / total, 3) if total else None

    raw = seq_read(origin, size)
    cold, cold_hits = hits_during(lambda: seq_read(vm, size))
    passes = warm_up(lambda: seq_read(vm, size))
    warm, warm_hits = hits_during(lambda: seq_read(vm, size))
    raw2 = seq_read(origin, size)
    res['seq'] = {'raw_mbs': round((raw + raw2) / 2, 1),
                  'cold_mbs': round(cold, 1), 'warm_mbs': round(warm, 1),
                  'cold_hit_ratio': cold_hits, 'warm_hit_ratio': warm_hits,
                  'warm_up_passes': passes, 'cache': cache_counts()}
    for i in range(k):
        eng.destroy('vm%d' % i)
    eng.remove_image('img')

    eng.create('vm1', 'img', origin)
    raw = rand_read(origin, offsets)
    cold, cold_hits = hits_during(lambda: rand_read(vm, offsets))
    passes = warm_up(lambda: rand_read(vm, offsets))
    warm, warm_hits = hits_during(lambda: rand_read(vm, offsets))
    raw2 = rand_read(origin, offsets)
    res['rand4k'] = {'raw_mbs': round((raw + raw2) / 2, 2),
                     'cold_mbs': round(cold, 2), 'warm_mbs': round(warm, 2),
                     'cold_hit_ratio': cold_hits, 'warm_hit_ratio': warm_hits,
                     'warm_up_passes': passes, 'count': count,
                     'cache': cache_counts()}
    eng.destroy('vm1')
    eng.remove_image('img')
    run.info.setdefault('engine', {})[kind] = res
    return eng


# -- part 2: dm-snapshot vs dm-thin ----------------------------------------

class Designs:
    """K snapshots and K thin volumes of one dm-cache device."""

    def __init__(self, base, origin_dev, workdir):
        self.base = base
        self.origin_dev = origin_dev
        self.sectors = _sectors(origin_dev)
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.loops = []
        self.devices = []

    def loop(self, path):
        dev = _losetup(path)
        self.loops.append(dev)
        return dev

    def create(self, name, table):
        _dm('create', name, stdin=table)
        self.devices.append(name)
        return '/dev/mapper/' + name

    def pool(self, name, data_bytes, meta_bytes=16 * MIB):
        meta = os.path.join(self.dir, name + '.meta')
        data = os.path.join(self.dir, name + '.data')
        _sparse(meta, meta_bytes)
        _sparse(data, data_bytes)
        mdev, ddev = self.loop(meta), self.loop(data)
        # A fresh pool needs zeroed metadata (its superblock).
        with open(mdev, 'r+b') as f:
            f.write(b'\0' * 4096)
        table = '0 %d thin-pool %s %s %d %d 1 error_if_no_space\n' % (
            data_bytes // 512, mdev, ddev, THIN_BLOCK, 8)
        path = self.create(name, table)
        return path, data, ddev

    def thin(self, pool, dev_id, origin=None):
        _dm('message', pool, '0', 'create_thin %d' % dev_id)
        return self.create('%s-t%d' % (pool, dev_id),
                           '0 %d thin /dev/mapper/%s %d %s\n' % (
                               self.sectors, pool, dev_id,
                               origin or self.base))

    def snapshot(self, name, cow_bytes, origin=None):
        cow = os.path.join(self.dir, name + '.cow')
        _sparse(cow, cow_bytes)
        table = '0 %d snapshot %s %s P %d\n' % (
            self.sectors, origin or self.base, self.loop(cow), SNAP_CHUNK)
        return self.create(name, table), cow

    def teardown(self):
        for name in reversed(self.devices):
            _dm('remove', '--retry', name, check=False)
        for dev in reversed(self.loops):
            subprocess.run(['losetup', '-d', dev], check=False)
        self.devices, self.loops = [], []


def thin_mapped_bytes(name):
    # thin status: <nr mapped sectors> <highest mapped sector>
    return int(_dm('status', name).split()[3]) * 512


def compare_part(run, args, eng, k, size, count):
    from fastboot_nova.storage.dm import engine as dm_engine

    res = {}
    eng.add_image('img', args['origin'])
    base = eng.dm_path(eng.dm_name('cache', 'img'))
    d = Designs(base, args['origin'], os.path.join(gr.STATE_PATH, 'bench'))
    cow_full = dm_engine.cow_bytes(d.sectors, SNAP_CHUNK)
    try:
        pool, _data, _ddev = d.pool('bpool', 2 * k * d.sectors * 512)
        snap_t, thin_t = [], []
        snaps, thins = [], []
        for i in range(k):
            t = time.monotonic()
            snaps.append(d.snapshot('bsnap%d' % i, cow_full))
            snap_t.append(time.monotonic() - t)
            t = time.monotonic()
            thins.append(d.thin('bpool', i))
            thin_t.append(time.monotonic() - t)
        n = min(5, k // 2)
        for label, ts in (('snapshot', snap_t), ('thin', thin_t)):
            res['create_' + label] = {
                'mean_s': round(sum(ts) / k, 4), 'first_s': round(ts[0], 4),
                'last_s': round(ts[-1], 4),
                'first%d_mean_s' % n: round(sum(ts[:n]) / n, 4),
                'last%d_mean_s' % n: round(sum(ts[-n:]) / n, 4)}
        offsets = rand_offsets(size, count, 'rand2')
        reads = {'snapshot': [], 'thin': []}
        for _round in range(2):
            for label, dev in (('snapshot', snaps[0][0]),
                               ('thin', thins[0])):
                reads[label].append((seq_read(dev, size),
                                     rand_read(dev, offsets)))
        for label, vals in reads.items():
            res['read_' + label] = {
                'seq_mbs': round(sum(v[0] for v in vals) / len(vals), 1),
                'rand4k_mbs': round(sum(v[1] for v in vals) / len(vals), 2)}
        wmib = min(16, size // MIB // 2)
        seq = list(range(0, wmib * MIB, MIB))
        rnd = rand_offsets(size, 256, 'wr')
        for label, dev, cow in (
                ('snapshot', snaps[1][0], snaps[1][1]),
                ('thin', thins[1], None)):
            first = write(dev, seq, MIB)
            second = write(dev, seq, MIB, seed='w2')
            rdev = snaps[2][0] if cow else thins[2]
            rfirst = write(rdev, rnd, 4096)
            if cow:
                used_seq = os.stat(cow).st_blocks * 512
                used_rnd = os.stat(snaps[2][1]).st_blocks * 512
            else:
                used_seq = thin_mapped_bytes('bpool-t1')
                used_rnd = thin_mapped_bytes('bpool-t2')
            disc = discard(dev, wmib * MIB)
            after = os.stat(cow).st_blocks * 512 if cow else \
                thin_mapped_bytes('bpool-t1')
            res['write_' + label] = {
                'first_seq_mbs': round(first, 1),
                'overwrite_seq_mbs': round(second, 1),
                'first_rand4k_mbs': round(rfirst, 2),
                'seq_written_mib': wmib,
                'space_after_seq_mib': round(used_seq / MIB, 2),
                'rand4k_written_mib': round(256 * 4096 / MIB, 2),
                'space_after_rand4k_mib': round(used_rnd / MIB, 2),
                'discard_error': disc,
                'space_after_discard_mib': round(after / MIB, 2)}
        res['pool_status'] = _dm('status', 'bpool').strip()
    finally:
        d.teardown()
    run.step('compare_k%d' % k)
    res.update(out_of_space(d))
    run.step('out_of_space')
    if args.get('origin2'):
        res.update(origin_error_during_first_write(d, args['origin2']))
        run.step('origin_error')
    eng.remove_image('img')
    run.info['compare'] = res


def out_of_space(d):
    """Write 8 MiB into 4 MiB of copy-on-write space, then grow it."""
    res = {}
    seq = list(range(0, 8 * MIB, 64 << 10))
    try:
        snap, _cow = d.snapshot('fullsnap', 4 * MIB)
        done, err = try_write(snap, seq, 64 << 10)
        res['snapshot_full'] = {
            'written_mib': round(done / MIB, 2), 'error': err,
            'status': _dm('status', 'fullsnap').strip(),
            'earlier_data_readable': readable(snap, 0)}
        pool, data, ddev = d.pool('fullpool', 4 * MIB)
        thin = d.thin('fullpool', 0)
        done, err = try_write(thin, seq, 64 << 10)
        status = _dm('status', 'fullpool').strip()
        ok = readable(thin, 0)
        # Grow the pool: the data file, its loop device, the pool table.
        _sparse_grow(data, 16 * MIB)
        subprocess.run(['losetup', '-c', ddev], check=True)
        table = _dm('table', 'fullpool').split()
        table[1] = str(16 * MIB // 512)
        _dm('suspend', 'fullpool')
        _dm('load', 'fullpool', stdin=' '.join(table) + '\n')
        _dm('resume', 'fullpool')
        more, err2 = try_write(thin, seq[done // (64 << 10):], 64 << 10)
        res['thin_full'] = {
            'written_mib': round(done / MIB, 2), 'error': err,
            'pool_status_full': status, 'earlier_data_readable': ok,
            'after_grow_written_mib': round(more / MIB, 2),
            'after_grow_error': err2,
            'pool_status_after_grow': _dm('status', 'fullpool').strip()}
    finally:
        d.teardown()
    return res


def _sparse_grow(path, size):
    with open(path, 'r+b') as f:
        f.truncate(size)


def origin_error_during_first_write(d, origin2):
    """The origin fails while a VM writes a block it never wrote before."""
    res = {}
    sectors = _sectors(origin2)
    lun_table = '0 %d linear %s 0\n' % (sectors, origin2)
    try:
        lun = d.create('blun', lun_table)
        snap, _cow = d.snapshot('esnap', dm_cow(sectors), origin=lun)
        d.pool('epool', 32 * MIB)
        thin = d.thin('epool', 0, origin=lun)
        for dev in (snap, thin):
            write(dev, [0], 64 << 10, seed='before')
        _dm('suspend', 'blun')
        _dm('load', 'blun', stdin='0 %d error\n' % sectors)
        _dm('resume', 'blun')
        for label, dev, name in (('snapshot', snap, 'esnap'),
                                 ('thin', thin, 'epool-t0')):
            # A 4 KiB write into a chunk not copied yet: the target must
            # read the rest of the chunk from the (failed) origin.
            done, err = try_write(dev, [8 * MIB], 4096)
            res.setdefault('origin_error_' + label, {}).update(
                write_error=err, status=_dm('status', name).strip())
        _dm('suspend', 'blun')
        _dm('load', 'blun', stdin=lun_table)
        _dm('resume', 'blun')
        for label, dev, name in (('snapshot', snap, 'esnap'),
                                 ('thin', thin, 'epool-t0')):
            res['origin_error_' + label].update(
                status_after=_dm('status', name).strip(),
                earlier_data_readable=readable(dev, 0))
    finally:
        d.teardown()
    return res


def dm_cow(sectors):
    from fastboot_nova.storage.dm import engine as dm_engine
    return dm_engine.cow_bytes(sectors, SNAP_CHUNK)


def scenario_bench(run, args):
    k = int(args.get('k', 20))
    count = int(args.get('rand', 1000))
    size = _sectors(args['origin']) * 512
    run.info['k'] = k
    run.info['origin_mib'] = size // MIB
    for kind in ('thin', 'snapshot'):
        eng = engine_part(run, args, k, size, count, kind)
        run.step('engine_' + kind)
    compare_part(run, args, eng, k, size, count)
    run.check('clean_at_end', not _dm('ls').strip() or
              'No devices' in _dm('ls'), _dm('ls'))
