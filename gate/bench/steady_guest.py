"""Steady-state reads and writes from inside a real guest.

``python -m gate.bench.steady --guest`` boots the demo guest
(:mod:`fastboot_nova.demo.guest`) with a second initramfs archive
appended to its own: its ``/init`` replaces the demo's and, instead of
mounting the disk, runs busybox ``dd`` with ``O_DIRECT`` on ``/dev/vda``
(sequential, queue depth 1: what a guest tool without libaio can do),
reads then writes, 4 KiB / 64 KiB / 1 MiB, and prints the sha256 of the
first MiBs of the disk so that the host checks the data the guest read on
each path. The disk is attached as Nova attaches it (virtio-blk,
``cache=none``, ``aio=native``). Under TCG the guest's own CPU is part of
every figure: compare variants only through their same-run ratios.
"""

import dataclasses
import hashlib
import os
import re
import stat
import subprocess
import tempfile
import time

from fastboot_nova.demo import guest as guest_mod
from fastboot_nova.demo import kernel
from fastboot_nova.demo import vm as vm_mod

MiB = 1024 * 1024
TAG = 'FBSTEADY'
#: (label, block size, MiB moved) of each dd run, reads and writes.
RUNS = (('4K', 4096, 16), ('64K', 65536, 64), ('1M', MiB, 192))
CHECK_MIB = 16

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
for m in $(cat /etc/fastboot-modules); do insmod "/lib/modules/$m"; done
i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1))
    [ $i -gt 500 ] && { echo "@TAG@ ERROR no disk"; poweroff -f; }
    usleep 10000
done
now() { read up _idle < /proc/uptime; echo "$up"; }
sum=$(dd if=/dev/vda bs=1M count=@CHECK@ iflag=direct 2>/dev/null | sha256sum)
echo "@TAG@ SUM ${sum%% *}"
for run in @RUNS@; do
    label=${run%%:*}; rest=${run#*:}; bs=${rest%%:*}; count=${rest#*:}
    a=$(now)
    dd if=/dev/vda of=/dev/null bs=$bs count=$count iflag=direct 2>/dev/null \
        || echo "@TAG@ ERROR read $label"
    b=$(now)
    echo "@TAG@ read $label $a $b"
done
for run in @RUNS@; do
    label=${run%%:*}; rest=${run#*:}; bs=${rest%%:*}; count=${rest#*:}
    a=$(now)
    dd if=/dev/zero of=/dev/vda bs=$bs count=$count oflag=direct \
        conv=notrunc 2>/dev/null || echo "@TAG@ ERROR write $label"
    b=$(now)
    echo "@TAG@ write $label $a $b"
done
echo "@TAG@ DONE"
poweroff -f
"""

_LINE = re.compile(r'^%s (read|write) (\S+) ([0-9.]+) ([0-9.]+)' % TAG)


def init_script():
    runs = ' '.join('%s:%d:%d' % (label, bs, mib * MiB // bs)
                    for label, bs, mib in RUNS)
    return (INIT.replace('@TAG@', TAG).replace('@RUNS@', runs)
            .replace('@CHECK@', str(CHECK_MIB)))


def bench_initramfs(guest, dest):
    """The guest's initramfs with our /init appended.

    The kernel unpacks concatenated archives in order: a later member
    replaces an earlier one of the same name.
    """
    extra = dest + '.extra'
    kernel.write_initramfs(extra, [
        ('init', stat.S_IFREG | 0o755, init_script())])
    with open(dest, 'wb') as out:
        for part in (guest.initramfs, extra):
            with open(part, 'rb') as f:
                out.write(f.read())
    os.unlink(extra)
    return dataclasses.replace(guest, initramfs=dest)


def expected_sum(image_path):
    h = hashlib.sha256()
    with open(image_path, 'rb') as f:
        h.update(f.read(CHECK_MIB * MiB))
    return h.hexdigest()


def run_guest(guest, disk, accel, timeout=300):
    """Boot on ``disk``; ``({'read 4K': seconds, ...}, sha256)``."""
    argv = vm_mod.qemu_argv(guest, 'fbsteady', None, accel)
    argv += ['-drive', 'file=%s,format=qcow2,if=virtio,cache=none,'
             'aio=native' % disk.replace(',', ',,')]
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, check=False)
    seconds, checksum = {}, None
    for line in proc.stdout.splitlines():
        line = line.strip()
        if 'ERROR' in line and line.startswith(TAG):
            raise RuntimeError('guest: %s' % line)
        if line.startswith(TAG + ' SUM '):
            checksum = line.split()[2]
        match = _LINE.match(line)
        if match:
            op, label, a, b = match.groups()
            seconds['%s %s' % (op, label)] = float(b) - float(a)
    if TAG + ' DONE' not in proc.stdout:
        raise RuntimeError('guest did not finish: %s' %
                           (proc.stdout + proc.stderr)[-2000:])
    return seconds, checksum


def measure(setup, reps, cache_dir):
    """{cell: {variant: [seconds]}} from guests, checksums checked."""
    guest = guest_mod.build_guest(cache_dir)
    work = tempfile.mkdtemp(prefix='fbsteady-g-', dir=setup.work)
    bench_guest = bench_initramfs(guest, os.path.join(work, 'initrd'))
    accel = vm_mod.choose_accel(guest)
    # The guest reads its own image: use the demo image as the origin.
    setup.use_image(guest.image)
    want = expected_sum(guest.image)
    samples = {}
    order = ['baseline', 'nbd', 'direct']
    for _rep in range(reps):
        for variant in order:
            path, cleanup = setup.overlay(variant)
            try:
                started = time.monotonic()
                seconds, checksum = run_guest(bench_guest, path, accel)
                if checksum != want:
                    raise RuntimeError(
                        '%s: the guest read %s, the image holds %s' % (
                            variant, checksum, want))
            finally:
                cleanup()
            for cell, value in seconds.items():
                samples.setdefault(cell, {}).setdefault(
                    variant, []).append(value)
            samples.setdefault('boot+run', {}).setdefault(
                variant, []).append(time.monotonic() - started)
        order = order[1:] + order[:1]
    return samples, accel
