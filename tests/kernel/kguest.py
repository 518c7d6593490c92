"""Build (once, cached) a guest that runs the project's Python code.

The kernel-test guest is the Debian kernel of :mod:`fastboot_nova.demo.guest`
booted under QEMU (PVH, TCG where KVM does not run a stock kernel) with:

- an initramfs (busybox) that loads the virtio, 9p, ext4, loop and
  device-mapper modules, mounts the root file system, the source tree and
  the state disk, and runs one Python script in a chroot;
- a Debian ``bookworm`` minbase root file system made by debootstrap with
  python3, dmsetup, losetup and Debian's python3-oslo.* packages, packed
  into an ext4 image (``mkfs.ext4 -d``, no loop mount) mounted read-only;
- the source tree, shared read-only over virtio-9p, so a code change needs
  no rebuild.

A build is keyed by :data:`KGUEST_VERSION`, the kernel package version and
the package list, made in a temporary directory and renamed into place when
complete (the manifest is written last), like ``demo/guest.py``.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time

from fastboot_nova.demo import guest as demo_guest
from fastboot_nova.demo import kernel as demo_kernel
from fastboot_nova.demo import vm as demo_vm

KGUEST_VERSION = 'k2'
SUITE = 'bookworm'
MIRROR_ENV = 'FASTBOOT_KTEST_MIRROR'
APT_SOURCES = ('/etc/apt/sources.list.d', '/etc/apt/sources.list')
CACHE_ENV = 'FASTBOOT_KTEST_CACHE'
DEFAULT_CACHE = os.path.expanduser('~/.cache/fastboot')

#: Packages of the root file system. python3-ply: debootstrap does not
#: resolve the virtual package python3-pycparser depends on.
PACKAGES = ('python3', 'python3-ply', 'dmsetup', 'mount', 'kmod',
            'python3-oslo.privsep', 'python3-oslo.concurrency',
            'python3-oslo.config', 'python3-oslo.i18n',
            'python3-oslo.utils', 'nbd-server', 'nbd-client',
            # os-brick origins over iSCSI (tests/kernel/guest_brick.py):
            # the LIO target, the open-iscsi initiator and os-brick.
            'open-iscsi', 'python3-rtslib-fb', 'python3-os-brick', 'udev')

#: Modules the initramfs loads (dependencies are resolved from
#: modules.dep). crc32c_generic: ext4 and dm-persistent-data ask the
#: crypto API for crc32c at run time, which modules.dep does not show.
MODULES = ('virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4',
           '9pnet_virtio', '9p', 'loop', 'dm_mod', 'dm_snapshot',
           'dm_cache', 'dm_cache_smq', 'dm_thin_pool', 'nbd',
           'dm_multipath', 'dm_round_robin',
           # iSCSI: the LIO target with a block backstore, the initiator
           # and the SCSI disk driver for the LUN it finds.
           'configfs', 'target_core_mod', 'target_core_iblock',
           'iscsi_target_mod', 'iscsi_tcp', 'sd_mod')

RESULT_TAG = 'FASTBOOT-KTEST-RESULT'
DONE_TAG = 'FASTBOOT-KTEST-DONE'
MANIFEST = 'manifest.json'
ROOTFS_FORMAT = 'ext4'

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
fail() { echo "@DONE@ init-error: $*"; poweroff -f; }
# ktest.skipmod=a.ko,b.ko leaves modules out: the missing-module tests.
skip=
for a in $(cat /proc/cmdline); do
    case "$a" in ktest.skipmod=*) skip=",${a#ktest.skipmod=}," ;; esac
done
for m in $(cat /etc/fastboot-modules); do
    case "$skip" in *",$m,"*) continue ;; esac
    insmod "/lib/modules/$m" 2>/dev/null || grep -q "^${m%.ko} " \
        /proc/modules || fail "insmod $m"
done
i=0
while [ ! -b /dev/vda ] || [ ! -b /dev/vdc ]; do
    i=$((i + 1)); [ $i -gt 500 ] && fail "no virtio disks"; usleep 10000
done
R=/newroot
mkdir -p $R
mount -t ext4 -o ro /dev/vda $R || fail "mount rootfs"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 src $R/src \
    || fail "mount 9p source"
mount -t ext4 /dev/vdb $R/var/lib/fastboot || fail "mount state disk"
args=
for a in $(cat /proc/cmdline); do
    case "$a" in ktest.*) args="$args ${a#ktest.}" ;; esac
done
chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp DM_DISABLE_UDEV=1 PYTHONPATH=/src \
    PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 /src/tests/kernel/guest_runner.py $args
echo "@DONE@ rc=$?"
sync
umount $R/var/lib/fastboot
poweroff -f
"""


@dataclasses.dataclass(frozen=True)
class KernelGuest:
    directory: str
    kernel: str
    initramfs: str
    rootfs: str
    boot_method: str
    kernel_version: str
    build_seconds: float = 0.0


def _digest(*parts):
    return hashlib.sha256('|'.join(parts).encode()).hexdigest()[:10]


def _kernel_key(pkg, version):
    return 'kguest-%s-%s-%s-%s' % (
        KGUEST_VERSION, pkg, version.replace('+', '_').replace(':', '_'),
        _digest(' '.join(MODULES), INIT))


def _rootfs_key():
    return 'krootfs-%s-%s-%s' % (KGUEST_VERSION, SUITE,
                                 _digest(' '.join(PACKAGES), ROOTFS_FORMAT))


def _load_manifest(directory, files):
    try:
        with open(os.path.join(directory, MANIFEST)) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if all(os.path.isfile(os.path.join(directory, m.get(k, '')))
           for k in files):
        return m
    return None


def _cached(cache_dir, key, files, builder, progress):
    """Build ``key`` into ``cache_dir`` once; return its manifest."""
    final = os.path.join(cache_dir, key)
    m = _load_manifest(final, files)
    if m:
        return final, m
    with open(final + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        m = _load_manifest(final, files)
        if m:
            return final, m
        shutil.rmtree(final, ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix='.build-%s-' % key, dir=cache_dir)
        try:
            started = time.monotonic()
            m = builder(tmp, progress)
            m['build_seconds'] = round(time.monotonic() - started, 1)
            with open(os.path.join(tmp, MANIFEST), 'w') as f:
                json.dump(m, f, indent=2)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final, m


def build(cache_dir=None, progress=print):
    """Return the kernel-test guest, building what is not cached.

    The kernel + initramfs and the root file system are cached apart: a
    change of the /init script does not re-run debootstrap.
    """
    cache_dir = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    os.makedirs(cache_dir, exist_ok=True)
    started = time.monotonic()
    pkg, version = demo_kernel.resolve_kernel_package()
    kdir, km = _cached(
        cache_dir, _kernel_key(pkg, version), ('kernel', 'initramfs'),
        lambda out, p: _build_kernel(out, pkg, version, p), progress)
    rdir, rm = _cached(cache_dir, _rootfs_key(), ('rootfs',), _build_rootfs,
                       progress)
    return KernelGuest(directory=kdir,
                       kernel=os.path.join(kdir, km['kernel']),
                       initramfs=os.path.join(kdir, km['initramfs']),
                       rootfs=os.path.join(rdir, rm['rootfs']),
                       boot_method=km['boot_method'],
                       kernel_version=km['kernel_version'],
                       build_seconds=round(time.monotonic() - started, 1))


def _build_kernel(out, pkg, version, progress):
    work = os.path.join(out, 'work')
    os.makedirs(work)
    progress('kguest: downloading %s %s' % (pkg, version))
    deb = demo_kernel.download_package(pkg, work)
    root = os.path.join(work, 'kernel')
    demo_kernel._run(['dpkg', '-x', deb, root])
    kver, = os.listdir(os.path.join(root, 'lib', 'modules'))
    moddir = os.path.join(root, 'lib', 'modules', kver)
    demo_kernel._run(['depmod', '-b', root, kver])
    with open(os.path.join(moddir, 'modules.dep')) as f:
        deps = demo_kernel.parse_modules_dep(f.read())
    with open(os.path.join(moddir, 'modules.builtin')) as f:
        builtin = demo_kernel.parse_modules_builtin(f.read())
    order = demo_kernel.module_load_order(deps, MODULES, builtin)
    vmlinuz = os.path.join(root, 'boot', 'vmlinuz-%s' % kver)
    vmlinux = os.path.join(out, 'vmlinux')
    if demo_kernel.extract_vmlinux(vmlinuz, vmlinux) and \
            demo_kernel.has_pvh_note(vmlinux):
        boot_method, kernel = 'pvh', 'vmlinux'
    else:
        shutil.copyfile(vmlinuz, os.path.join(out, 'vmlinuz'))
        boot_method, kernel = 'bios', 'vmlinuz'
    progress('kguest: initramfs with %d modules' % len(order))
    _write_initramfs(os.path.join(out, 'initramfs.cpio.gz'), moddir, order)
    shutil.rmtree(work)
    return {'kernel': kernel, 'initramfs': 'initramfs.cpio.gz',
            'boot_method': boot_method,
            'kernel_version': '%s %s' % (pkg, version),
            'kernel_release': kver}


def parse_apt_sources(text, suite):
    """First archive URI serving ``suite`` in apt sources text, or None.

    Both the one-line (sources.list) and the deb822 (.sources) styles.
    """
    for stanza in text.split('\n\n'):
        fields = {}
        for line in stanza.splitlines():
            line = line.strip()
            if line.startswith('deb '):
                words = [w for w in line.split()[1:] if not w.startswith('[')]
                if len(words) >= 2 and words[1] == suite:
                    return words[0]
            key, sep, value = line.partition(':')
            if sep and not line.startswith('#'):
                fields[key.strip().lower()] = value.split()
        if 'deb' in fields.get('types', []) and \
                suite in fields.get('suites', []) and fields.get('uris'):
            return fields['uris'][0]
    return None


def apt_mirror(suite):
    """The archive this machine's apt uses for ``suite``.

    debootstrap then reaches exactly what ``apt-get`` reaches here.
    """
    paths = []
    for source in APT_SOURCES:
        if os.path.isdir(source):
            paths += sorted(os.path.join(source, n) for n in os.listdir(source)
                            if n.endswith(('.list', '.sources')))
        elif os.path.exists(source):
            paths.append(source)
    for path in paths:
        with open(path, encoding='utf-8') as f:
            uri = parse_apt_sources(f.read(), suite)
        if uri:
            return uri
    raise demo_kernel.GuestBuildError(
        reason='no apt source for %s in %s; set %s to a Debian mirror '
               'URL' % (suite, ', '.join(APT_SOURCES), MIRROR_ENV))


def _build_rootfs(out, progress):
    progress('kguest: debootstrap %s (%s)' % (SUITE, ', '.join(PACKAGES)))
    rootfs = os.path.join(out, 'work')
    mirror = os.environ.get(MIRROR_ENV) or apt_mirror(SUITE)
    t = time.monotonic()
    demo_kernel._run(['debootstrap', '--variant=minbase',
                     '--include=' + ','.join(PACKAGES), SUITE, rootfs,
                     mirror])
    debootstrap_seconds = time.monotonic() - t
    for rel in ('usr/share/doc', 'usr/share/man', 'usr/share/locale',
                'usr/share/info', 'var/cache/apt', 'var/lib/apt/lists'):
        shutil.rmtree(os.path.join(rootfs, rel), ignore_errors=True)
    for rel in ('src', 'var/lib/fastboot', 'newroot'):
        os.makedirs(os.path.join(rootfs, rel), exist_ok=True)
    progress('kguest: packing the root file system (%s)' % ROOTFS_FORMAT)
    image = os.path.join(out, 'rootfs.img')
    size = _tree_bytes(rootfs)
    with open(image, 'wb') as f:
        f.truncate(_round_mib(size * 1.3 + (64 << 20)))
    # ext4 without a journal, mounted read-only: the guest loads the ext4
    # modules for the state disk anyway.
    demo_kernel._run(['mkfs.ext4', '-q', '-F', '-O', '^has_journal',
                     '-E', 'lazy_itable_init=0', '-d', rootfs, image])
    shutil.rmtree(rootfs)
    return {'rootfs': 'rootfs.img', 'suite': SUITE,
            'packages': list(PACKAGES), 'format': ROOTFS_FORMAT,
            'debootstrap_seconds': round(debootstrap_seconds, 1)}


def _tree_bytes(top):
    total = 0
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _round_mib(n):
    return (int(n) + (1 << 20) - 1) >> 20 << 20


def _write_initramfs(dest, moddir, order):
    d, f, x = (stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644,
               stat.S_IFREG | 0o755)
    files = [(n, d, b'') for n in ('bin', 'dev', 'etc', 'lib',
                                   'lib/modules', 'proc', 'sys',
                                   'newroot')]
    files.append(('dev/console', stat.S_IFCHR | 0o600, (5, 1)))
    with open(demo_guest.BUSYBOX, 'rb') as fh:
        files.append(('bin/busybox', x, fh.read()))
    files.append(('bin/sh', stat.S_IFLNK | 0o777, 'busybox'))
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for rel in order:
            name = os.path.basename(rel).split('.ko', 1)[0] + '.ko'
            local = os.path.join(tmp, name)
            demo_kernel._copy_module(os.path.join(moddir, rel), local)
            with open(local, 'rb') as fh:
                files.append(('lib/modules/' + name, f, fh.read()))
            names.append(name)
    files.append(('etc/fastboot-modules', f,
                  ''.join(n + '\n' for n in names)))
    files.append(('init', x, INIT.replace('@DONE@', DONE_TAG)))
    demo_kernel.write_initramfs(dest, files)


# -- running -----------------------------------------------------------------

@dataclasses.dataclass
class RunResult:
    result: dict
    wall_seconds: float
    console: str
    returncode: int


def make_state_disk(path, size_mib=256, journal=False):
    """An ext4 state disk; ``journal`` for tests that kill the guest."""
    with open(path, 'wb') as f:
        f.truncate(size_mib << 20)
    features = ['-O', 'has_journal' if journal else '^has_journal']
    demo_kernel._run(['mkfs.ext4', '-q', '-F'] + features + [path])


def run(guest, source_dir, disks, args, accel='tcg', memory_mib=512,
        timeout=None, console_log=None, kill_on=None):
    """Boot the guest; return the JSON its runner printed.

    :param timeout: seconds before QEMU is killed; default
        ``$FASTBOOT_KTEST_GUEST_TIMEOUT`` or 600 (a TCG guest on a loaded
        2-core machine took over 300 s for the engine test).

    :param kill_on: a console string; when the guest prints it, QEMU is
        killed at once (SIGKILL): a host losing power, as far as the
        guest's page cache and devices are concerned.

    :param disks: list of ``(path, serial)``; the first is the state disk
        (ext4, /dev/vdb), the others follow as vdc, vdd...
    :param args: ``key=value`` strings passed as ``ktest.key=value``.
    """
    argv = [demo_vm.QEMU, '-accel', accel, '-m', str(memory_mib), '-smp', '1',
            '-nodefaults', '-no-user-config', '-display', 'none',
            '-serial', 'stdio', '-no-reboot']
    if guest.boot_method == 'pvh':
        argv += ['-bios', demo_guest.QBOOT_ROM]
    cmdline = demo_guest.BASE_CMDLINE + ''.join(' ktest.' + a for a in args)
    argv += ['-kernel', guest.kernel, '-initrd', guest.initramfs,
             '-append', cmdline]
    # Explicit devices in order: QEMU would add if=virtio drives after
    # the -device ones, and the guest relies on vda..vdN order.
    disks = [(guest.rootfs + ',readonly=on', 'rootfs')] + list(disks)
    for i, (path, serial) in enumerate(disks):
        argv += ['-drive', 'file=%s,format=raw,if=none,id=d%d' % (path, i),
                 '-device', 'virtio-blk-pci,drive=d%d,serial=%s' % (
                     i, serial)]
    argv += ['-fsdev', 'local,id=src,path=%s,security_model=none,'
             'readonly=on' % source_dir,
             '-device', 'virtio-9p-pci,fsdev=src,mount_tag=src']
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if timeout is None:
        timeout = int(os.environ.get('FASTBOOT_KTEST_GUEST_TIMEOUT', 600))
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        for raw in proc.stdout:
            line = raw.decode('utf-8', 'replace')
            lines.append(line)
            if kill_on and kill_on in line:
                proc.kill()
                break
        proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
    wall = time.monotonic() - started
    console = ''.join(lines)
    if console_log:
        with open(console_log, 'w') as f:
            f.write(console)
    result = None
    for line in console.splitlines():
        pos = line.find(RESULT_TAG)
        if pos >= 0:
            result = json.loads(line[pos + len(RESULT_TAG):].strip())
    return RunResult(result=result, wall_seconds=wall, console=console,
                     returncode=proc.returncode)
