"""Build a tiny, real test guest from Debian packages, once, and reuse it.

The guest is what ``fastboot demo`` and the integration tests boot under
QEMU: a Debian kernel, an initramfs holding busybox and the few modules a
virtio disk with ext4 needs, and a raw origin image with an ext4 file system
that holds a small seeded payload and large filler files the boot never
reads. The initramfs ``/init`` mounts the disk, prints the payload's sha256
on the serial console, writes a per-VM marker file and powers off, so a
caller can check that each VM saw the origin data and wrote to its own
copy-on-write layer.

Nothing here needs a loop device or a mount on the host: ``mkfs.ext4 -d``
fills the file system and the initramfs archive is written in Python.
"""

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import shutil
import stat
import tempfile
import time

# The kernel package, vmlinux, module and cpio helpers moved to
# fastboot_nova.demo.kernel; these names stay importable from here, and
# the build below looks them up here.
from fastboot_nova.demo.kernel import _CHUNK  # noqa: F401
from fastboot_nova.demo.kernel import _copy_module  # noqa: F401
from fastboot_nova.demo.kernel import _run  # noqa: F401
from fastboot_nova.demo.kernel import cpio_newc_entry  # noqa: F401
from fastboot_nova.demo.kernel import download_package  # noqa: F401
from fastboot_nova.demo.kernel import ELF_MAGIC  # noqa: F401
from fastboot_nova.demo.kernel import extract_vmlinux  # noqa: F401
from fastboot_nova.demo.kernel import GuestBuildError  # noqa: F401
from fastboot_nova.demo.kernel import has_pvh_note  # noqa: F401
from fastboot_nova.demo.kernel import KERNEL_META_PACKAGE  # noqa: F401
from fastboot_nova.demo.kernel import module_load_order  # noqa: F401
from fastboot_nova.demo.kernel import module_name  # noqa: F401
from fastboot_nova.demo.kernel import parse_apt_version  # noqa: F401
from fastboot_nova.demo.kernel import parse_kernel_depends  # noqa: F401
from fastboot_nova.demo.kernel import parse_modules_builtin  # noqa: F401
from fastboot_nova.demo.kernel import parse_modules_dep  # noqa: F401
from fastboot_nova.demo.kernel import resolve_kernel_package  # noqa: F401
from fastboot_nova.demo.kernel import write_initramfs  # noqa: F401
from fastboot_nova.demo.kernel import XZ_MAGIC  # noqa: F401
from fastboot_nova.demo import notice
from fastboot_nova.i18n import _

LOG = logging.getLogger(__name__)

#: Bump when the layout of the artefacts or the /init script changes, so
#: that cached guests built by older code are not reused.
GUEST_VERSION = 'v1'

BUSYBOX = '/bin/busybox'
QBOOT_ROM = '/usr/share/qemu/qboot.rom'

MANIFEST = 'manifest.json'
KERNEL_PVH = 'vmlinux'
KERNEL_BZIMAGE = 'vmlinuz'
INITRAMFS = 'initramfs.cpio.gz'
IMAGE = 'origin.raw'

#: Where the payload lives inside the guest file system.
PAYLOAD_PATH = 'payload/payload.bin'
#: Size of the payload the guest reads and checksums at boot.
PAYLOAD_MIB = 4
#: Share of the image filled with files the boot never reads, so that the
#: image looks used but a boot reads a few percent of it.
FILLER_FRACTION = 0.5
MIN_IMAGE_MIB = 32
#: Where /init writes the VM name, inside the guest file system.
MARKER_DIR = 'fastboot-vms'

#: Console lines /init prints (vm.py parses them).
CHECKSUM_TAG = 'FASTBOOT-CHECKSUM'
DONE_TAG = 'FASTBOOT-DONE'
ERROR_TAG = 'FASTBOOT-ERROR'
PROBE_TAG = 'FASTBOOT-PROBE-OK'

#: Modules /init loads, in dependency order once resolved. crc32c_generic
#: is not a dependency of ext4 in modules.dep (ext4 asks the crypto API for
#: "crc32c" at mount time, through modprobe, which the initramfs lacks).
WANTED_MODULES = ('virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4')

#: The kernel command line; ``fastboot.vm=NAME`` is appended per VM.
#: ``panic=-1`` turns a dying /init into a reboot, which ``-no-reboot``
#: turns into a QEMU exit, so a broken guest fails fast.
#: ``no_timer_check``: a guest starved of CPU (TCG on a busy host) can
#: fail the IO-APIC timer check and panic at boot; cloud images set it.
BASE_CMDLINE = 'console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check'

INIT_SCRIPT = r"""#!/bin/busybox sh
# fastboot test guest: check the payload, mark the disk, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

fail() {
    echo "@ERROR@ $*"
    poweroff -f
}

vm=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        fastboot.vm=*) vm="${arg#fastboot.vm=}" ;;
        fastboot.probe=1) echo "@PROBE@"; poweroff -f ;;
    esac
done
case "$vm" in
    ''|*[!A-Za-z0-9_.-]*) fail "bad or missing fastboot.vm=" ;;
esac

for m in $(cat /etc/fastboot-modules); do
    insmod "/lib/modules/$m" || fail "insmod $m"
done

i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1))
    [ $i -gt 500 ] && fail "no /dev/vda"
    usleep 10000
done
mount -t ext4 -o rw /dev/vda /mnt || fail "mount /dev/vda"
sum=$(sha256sum "/mnt/@PAYLOAD@") || fail "sha256sum"
echo "@CHECKSUM@ ${sum%% *}"
mkdir -p "/mnt/@MARKERS@" || fail "mkdir markers"
echo "$vm" > "/mnt/@MARKERS@/$vm" || fail "write marker"
sync
umount /mnt || fail "umount"
echo "@DONE@ $vm"
poweroff -f
"""


@dataclasses.dataclass(frozen=True)
class Guest:
    """A built test guest; every path is absolute."""

    directory: str
    #: The kernel QEMU loads: an uncompressed vmlinux for ``pvh``, the
    #: bzImage for ``bios``.
    kernel: str
    initramfs: str
    #: The raw origin image; treat it as read-only.
    image: str
    image_size: int
    payload_sha256: str
    #: ``pvh`` (qboot, direct ELF entry) or ``bios`` (SeaBIOS, bzImage).
    boot_method: str
    kernel_package: str
    kernel_version: str
    cmdline: str = BASE_CMDLINE
    payload_path: str = PAYLOAD_PATH
    payload_size: int = 0
    marker_dir: str = MARKER_DIR

    def marker_path(self, vm):
        """Path, inside the guest file system, of ``vm``'s marker file."""
        return '/%s/%s' % (self.marker_dir, vm)


# -- initramfs ------------------------------------------------------------

def init_script():
    """The /init of the test guest."""
    return (INIT_SCRIPT.replace('@ERROR@', ERROR_TAG)
            .replace('@PROBE@', PROBE_TAG)
            .replace('@CHECKSUM@', CHECKSUM_TAG)
            .replace('@DONE@', DONE_TAG)
            .replace('@PAYLOAD@', PAYLOAD_PATH)
            .replace('@MARKERS@', MARKER_DIR))


def build_initramfs(dest, modules_dir, module_paths, busybox=BUSYBOX):
    """Write the initramfs: busybox, the modules in order, /init."""
    d, f, x = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, \
        stat.S_IFREG | 0o755
    files = [(n, d, b'') for n in ('bin', 'dev', 'etc', 'lib',
                                   'lib/modules', 'mnt', 'proc', 'sys')]
    # The kernel opens /dev/console for /init before anything is mounted.
    files.append(('dev/console', stat.S_IFCHR | 0o600, (5, 1)))
    with open(busybox, 'rb') as fh:
        files.append(('bin/busybox', x, fh.read()))
    files.append(('bin/sh', stat.S_IFLNK | 0o777, 'busybox'))
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for rel in module_paths:
            name = os.path.basename(rel).split('.ko', 1)[0] + '.ko'
            local = os.path.join(tmp, name)
            _copy_module(os.path.join(modules_dir, rel), local)
            with open(local, 'rb') as fh:
                files.append(('lib/modules/' + name, f, fh.read()))
            names.append(name)
    files.append(('etc/fastboot-modules', f,
                  ''.join(n + '\n' for n in names)))
    files.append(('init', x, init_script()))
    write_initramfs(dest, files)
    return names


# -- origin image ---------------------------------------------------------

def write_random_file(path, size, seed):
    """Write ``size`` seeded pseudo-random bytes; return their sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, 'wb') as out:
        left = size
        while left:
            block = rng.randbytes(min(left, _CHUNK))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def build_image(dest, staging, image_size, payload_size, filler_size,
                seed='fastboot-guest'):
    """Make the raw origin image with an ext4 file system.

    :returns: the payload's sha256.
    """
    os.makedirs(os.path.join(staging, os.path.dirname(PAYLOAD_PATH)))
    payload_sha = write_random_file(os.path.join(staging, PAYLOAD_PATH),
                                    payload_size, '%s/payload' % seed)
    filler_dir = os.path.join(staging, 'filler')
    os.makedirs(filler_dir)
    part = 16 << 20
    for i in range((filler_size + part - 1) // part):
        size = min(part, filler_size - i * part)
        write_random_file(os.path.join(filler_dir, 'filler-%03d.bin' % i),
                          size, '%s/filler/%d' % (seed, i))
    with open(dest, 'wb') as fh:
        fh.truncate(image_size)
    # No journal: a short-lived test disk needs none, and its absence
    # keeps the first mount quick. -d fills it without mounting anything.
    _run(['mkfs.ext4', '-q', '-F', '-b', '4096', '-L', 'fastboot',
          '-O', '^has_journal',
          '-E', 'lazy_itable_init=0,lazy_journal_init=0', '-d', staging,
          dest])
    shutil.rmtree(staging)
    return payload_sha


# -- build and cache ------------------------------------------------------

def _cache_key(kernel_package, kernel_version, image_size_mib):
    safe = re.sub(r'[^A-Za-z0-9.+_-]', '_', '%s_%s' % (kernel_package,
                                                       kernel_version))
    return 'guest-%s-%s-%dm' % (GUEST_VERSION, safe, image_size_mib)


def load_guest(directory):
    """Return the :class:`Guest` built in ``directory``.

    :returns: None if there is no complete build there.
    """
    try:
        with open(os.path.join(directory, MANIFEST)) as fh:
            m = json.load(fh)
        if m.get('guest_version') != GUEST_VERSION:
            return None
        paths = {k: os.path.join(directory, m[k])
                 for k in ('kernel', 'initramfs', 'image')}
        if not all(os.path.isfile(p) for p in paths.values()):
            return None
        if os.path.getsize(paths['image']) != m['image_size']:
            return None
        return Guest(directory=directory, kernel=paths['kernel'],
                     initramfs=paths['initramfs'], image=paths['image'],
                     image_size=m['image_size'],
                     payload_sha256=m['payload_sha256'],
                     boot_method=m['boot_method'],
                     kernel_package=m['kernel_package'],
                     kernel_version=m['kernel_version'],
                     cmdline=m.get('cmdline', BASE_CMDLINE),
                     payload_size=m.get('payload_size', 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        LOG.debug('No usable test guest in %s: %s', directory, e)
        return None


def _find_any_build(cache_dir, image_size_mib):
    """Any complete build of this guest version and size.

    Used when apt cannot tell which kernel is current.
    """
    suffix = '-%dm' % image_size_mib
    try:
        names = sorted(os.listdir(cache_dir), reverse=True)
    except OSError:
        return None
    for name in names:
        if name.startswith('guest-%s-' % GUEST_VERSION) and \
                name.endswith(suffix):
            guest = load_guest(os.path.join(cache_dir, name))
            if guest:
                return guest
    return None


def build_guest(cache_dir, image_size_mib=256, progress=None, verify=True):
    """Return the test guest, building it into ``cache_dir`` if needed.

    A build is keyed by :data:`GUEST_VERSION`, the kernel package and its
    version, and the image size, and reused while its manifest is valid.
    Concurrent callers (threads or processes) build once: a file lock
    serialises them, and a build happens in a temporary directory renamed
    into place only when complete, so a crash never leaves a half-built
    guest that looks valid.

    :param image_size_mib: virtual size of the raw origin image; at least
        :data:`MIN_IMAGE_MIB`. Half of it is filler the boot never reads.
    :param progress: called with one-line messages while building.
    :param verify: boot the new guest once; if the PVH boot fails, fall
        back to SeaBIOS and the bzImage.
    :returns: :class:`Guest`
    :raises GuestBuildError: if a step fails.
    """
    if image_size_mib < MIN_IMAGE_MIB:
        raise GuestBuildError(reason=_('the image needs at least %d MiB') %
                              MIN_IMAGE_MIB)
    os.makedirs(cache_dir, exist_ok=True)
    try:
        pkg, version = resolve_kernel_package()
    except GuestBuildError as e:
        guest = _find_any_build(cache_dir, image_size_mib)
        if guest:
            LOG.warning('Cannot resolve the kernel package (%s); reusing %s',
                        e, guest.directory)
            return guest
        notice.notify(progress,
                      'Updating apt lists to find the kernel package')
        _run(['apt-get', 'update'])
        pkg, version = resolve_kernel_package()
    key = _cache_key(pkg, version, image_size_mib)
    final = os.path.join(cache_dir, key)
    guest = load_guest(final)
    if guest:
        LOG.debug('Reusing test guest %s', final)
        return guest
    with open(os.path.join(cache_dir, '.%s.lock' % key), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have finished the build while we waited.
        guest = load_guest(final)
        if guest:
            return guest
        if os.path.exists(final):
            # An invalid leftover (older layout, manual damage): replace.
            LOG.warning('Replacing invalid test guest %s', final)
            shutil.rmtree(final)
        # Only the lock holder builds, so any other build directory of this
        # key is left over from a killed build.
        for name in os.listdir(cache_dir):
            if name.startswith('.build-%s-' % key):
                LOG.info('Removing interrupted build %s', name)
                shutil.rmtree(os.path.join(cache_dir, name),
                              ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix='.build-%s-' % key, dir=cache_dir)
        try:
            _build(tmp, pkg, version, image_size_mib, verify, progress)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    guest = load_guest(final)
    if guest is None:
        raise GuestBuildError(reason=_('%s is incomplete after the build') %
                              final)
    return guest


def _build(out, pkg, version, image_size_mib, verify, progress):
    started = time.monotonic()
    work = os.path.join(out, 'work')
    os.makedirs(work)
    notice.notify(progress, 'Downloading %s %s', pkg, version)
    deb = download_package(pkg, work, progress)
    root = os.path.join(work, 'root')
    notice.notify(progress, 'Unpacking %s', os.path.basename(deb))
    _run(['dpkg', '-x', deb, root])
    os.unlink(deb)
    mod_root = os.path.join(root, 'lib', 'modules')
    kvers = os.listdir(mod_root)
    if len(kvers) != 1:
        raise GuestBuildError(reason=_('expected one kernel in %s, got %s')
                              % (pkg, kvers))
    kver = kvers[0]
    moddir = os.path.join(mod_root, kver)
    vmlinuz = os.path.join(root, 'boot', 'vmlinuz-%s' % kver)
    shutil.copyfile(vmlinuz, os.path.join(out, KERNEL_BZIMAGE))

    # The package ships no modules.dep (its postinst makes it): make it.
    _run(['depmod', '-b', root, kver])
    with open(os.path.join(moddir, 'modules.dep')) as fh:
        deps = parse_modules_dep(fh.read())
    builtin = set()
    if os.path.exists(os.path.join(moddir, 'modules.builtin')):
        with open(os.path.join(moddir, 'modules.builtin')) as fh:
            builtin = parse_modules_builtin(fh.read())
    order = module_load_order(deps, WANTED_MODULES, builtin)
    notice.notify(progress, 'Building the initramfs (%d modules)', len(order))
    names = build_initramfs(os.path.join(out, INITRAMFS), moddir, order)

    boot_method = 'bios'
    kernel = KERNEL_BZIMAGE
    vmlinux = os.path.join(out, KERNEL_PVH)
    if os.path.exists(QBOOT_ROM) and extract_vmlinux(vmlinuz, vmlinux):
        if has_pvh_note(vmlinux):
            boot_method, kernel = 'pvh', KERNEL_PVH
        else:
            os.unlink(vmlinux)
    shutil.rmtree(work)

    image_size = image_size_mib << 20
    payload_size = PAYLOAD_MIB << 20
    filler_size = int(image_size * FILLER_FRACTION)
    notice.notify(progress, 'Making the %d MiB origin image', image_size_mib)
    sha = build_image(os.path.join(out, IMAGE), os.path.join(out, 'stage'),
                      image_size, payload_size, filler_size)
    manifest = {
        'guest_version': GUEST_VERSION,
        'kernel_package': pkg,
        'kernel_version': version,
        'kernel_release': kver,
        'boot_method': boot_method,
        'kernel': kernel,
        'initramfs': INITRAMFS,
        'modules': names,
        'image': IMAGE,
        'image_size': image_size,
        'payload_path': PAYLOAD_PATH,
        'payload_size': payload_size,
        'payload_sha256': sha,
        'filler_size': filler_size,
        'cmdline': BASE_CMDLINE,
    }
    if verify:
        boot_method, kernel = _verify_boot(out, manifest, progress)
        manifest['boot_method'], manifest['kernel'] = boot_method, kernel
        if boot_method == 'bios' and os.path.exists(vmlinux):
            os.unlink(vmlinux)
    # Every VM shares the origin through a backing chain: keep it intact.
    os.chmod(os.path.join(out, IMAGE), 0o444)
    manifest['build_seconds'] = round(time.monotonic() - started, 2)
    # The manifest is written last: its presence marks a complete build.
    with open(os.path.join(out, MANIFEST + '.tmp'), 'w') as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
    os.rename(os.path.join(out, MANIFEST + '.tmp'),
              os.path.join(out, MANIFEST))


def _verify_boot(out, manifest, progress):
    """Boot the new guest once on a throwaway overlay.

    Falls back from PVH to SeaBIOS if PVH does not work.

    :returns: ``(boot_method, kernel)`` that worked.
    """
    # Imported here: vm.py needs nothing from this module at import time,
    # and most callers of this module never boot anything.
    from fastboot_nova.demo import vm as demo_vm

    tries = [(manifest['boot_method'], manifest['kernel'])]
    if tries[0][0] == 'pvh':
        tries.append(('bios', KERNEL_BZIMAGE))
    reasons = []
    for method, kernel in tries:
        guest = Guest(directory=out, kernel=os.path.join(out, kernel),
                      initramfs=os.path.join(out, INITRAMFS),
                      image=os.path.join(out, IMAGE),
                      image_size=manifest['image_size'],
                      payload_sha256=manifest['payload_sha256'],
                      boot_method=method,
                      kernel_package=manifest['kernel_package'],
                      kernel_version=manifest['kernel_version'],
                      payload_size=manifest['payload_size'])
        overlay = os.path.join(out, 'verify.qcow2')
        log = os.path.join(out, 'verify-%s.log' % method)
        notice.notify(progress, 'Test boot of the new guest (%s)', method)
        _run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', guest.image,
              '-F', 'raw', overlay])
        try:
            result = demo_vm.boot(guest, 'verify', overlay, log)
        finally:
            os.unlink(overlay)
        if result.ok and result.checksum_ok:
            os.unlink(log)
            manifest['verify_boot_seconds'] = round(result.boot_seconds, 2)
            return method, kernel
        reasons.append('%s: %s' % (method, result.error))
        LOG.warning('Test boot with %s failed: %s (console log %s)',
                    method, result.error, log)
    raise GuestBuildError(reason=_('the guest does not boot (%s)') %
                          '; '.join(reasons))
