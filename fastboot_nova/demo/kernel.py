"""The Debian kernel side of the demo guest: the package, the vmlinux, the
modules and the initramfs archive.

Resolves and downloads the kernel package with apt, pulls the uncompressed
PVH-bootable vmlinux out of the bzImage, orders the modules the guest loads
from modules.dep, and writes a gzip'd newc cpio archive in Python (so it can
hold /dev/console without mknod on the host). :mod:`fastboot_nova.demo.guest`
puts these together into the guest.
"""

import gzip
import logging
import lzma
import os
import re
import shutil
import struct
import subprocess

from fastboot_nova.demo import notice
from fastboot_nova import exception
from fastboot_nova.i18n import _

LOG = logging.getLogger(__name__)

KERNEL_META_PACKAGE = 'linux-image-amd64'

XZ_MAGIC = b'\xfd7zXZ\x00'
ELF_MAGIC = b'\x7fELF'
_CHUNK = 1 << 20


class GuestBuildError(exception.FastbootException):
    message = _("Cannot build the fastboot test guest: %(reason)s")


def _run(argv, **kwargs):
    """Run ``argv`` (a list), raising GuestBuildError with its stderr."""
    argv = [str(a) for a in argv]
    LOG.debug('Running %s', argv)
    kwargs.setdefault('stdin', subprocess.DEVNULL)
    if 'stdout' not in kwargs:
        kwargs['stdout'] = subprocess.PIPE
    try:
        return subprocess.run(argv, check=True, stderr=subprocess.PIPE,
                              **kwargs)
    except FileNotFoundError:
        raise GuestBuildError(reason=_('%s is not installed') % argv[0])
    except subprocess.CalledProcessError as e:
        err = (e.stderr or b'').decode('utf-8', 'replace').strip()
        raise GuestBuildError(
            reason=_('%(cmd)s exited with %(code)s: %(err)s') % {
                'cmd': ' '.join(argv[:3]), 'code': e.returncode,
                'err': err[-2000:]})


# -- kernel package -------------------------------------------------------

def parse_kernel_depends(text, prefix='linux-image-'):
    """Find the kernel in the ``Depends:`` of ``apt-cache show`` output.

    :returns: ``(package, version)``; version is None when the dependency
        has no ``(= version)`` constraint. ``(None, None)`` if none found.
    """
    for line in text.splitlines():
        if not line.startswith('Depends:'):
            continue
        for alternatives in line.split(':', 1)[1].split(','):
            for dep in alternatives.split('|'):
                m = re.match(r'\s*(\S+)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?',
                             dep)
                if m and m.group(1).startswith(prefix):
                    return m.group(1), m.group(2)
    return None, None


def parse_apt_version(text):
    """Return the ``Version:`` of ``apt-cache show`` output."""
    for line in text.splitlines():
        if line.startswith('Version:'):
            return line.split(':', 1)[1].strip()
    return None


def resolve_kernel_package(meta=KERNEL_META_PACKAGE):
    """Return ``(package, version)`` of the kernel ``meta`` depends on."""
    # One apt-cache call when the meta package pins the version, as
    # Debian's does: apt-cache takes about a second without a pkgcache.
    out = _run(['apt-cache', 'show', '--no-all-versions', meta]).stdout
    pkg, version = parse_kernel_depends(out.decode())
    if not pkg:
        raise GuestBuildError(reason=_('%s depends on no kernel') % meta)
    if not version:
        out = _run(['apt-cache', 'show', '--no-all-versions', pkg]).stdout
        version = parse_apt_version(out.decode())
    if not version:
        raise GuestBuildError(reason=_('no version known for %s') % pkg)
    return pkg, version


def download_package(pkg, dest, progress=None):
    """``apt-get download`` ``pkg`` into ``dest``; return the .deb path.

    ``apt-get update`` runs only when the first download fails, since the
    package lists are normally present and an update is slow.
    """
    # apt warns that _apt cannot write into a private temporary directory
    # and downloads as the caller instead, which is what we want.
    try:
        _run(['apt-get', 'download', pkg], cwd=dest)
    except GuestBuildError as first:
        notice.notify(progress,
                      'Download of %s failed (%s), updating apt lists',
                      pkg, first)
        _run(['apt-get', 'update'])
        _run(['apt-get', 'download', pkg], cwd=dest)
    debs = [f for f in os.listdir(dest)
            if f.startswith(pkg + '_') and f.endswith('.deb')]
    if len(debs) != 1:
        raise GuestBuildError(reason=_('apt-get download %s left %s') % (
            pkg, debs))
    return os.path.join(dest, debs[0])


# -- kernel image ---------------------------------------------------------

def extract_vmlinux(vmlinuz, dest):
    """Write the uncompressed ELF kernel inside bzImage ``vmlinuz`` to
    ``dest``.

    Debian compresses its kernels with xz: find each xz stream magic and
    decompress the first one that yields an ELF file. The stream is
    followed by other data, which the decompressor leaves unread.

    :returns: True if a vmlinux was written, False if none was found.
    """
    with open(vmlinuz, 'rb') as f:
        data = f.read()
    start = data.find(XZ_MAGIC)
    while start >= 0:
        if _xz_to_file(data, start, dest):
            return True
        start = data.find(XZ_MAGIC, start + 1)
    return False


def _xz_to_file(data, start, dest):
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    view = memoryview(data)
    pos = start
    head = b''
    try:
        with open(dest, 'wb') as out:
            # Feed in chunks and bound each output, so that a large kernel
            # never sits in memory whole.
            while not dec.eof:
                chunk = b''
                if dec.needs_input:
                    chunk = view[pos:pos + _CHUNK]
                    if not chunk:
                        raise EOFError('truncated xz stream')
                    pos += len(chunk)
                block = dec.decompress(chunk, max_length=_CHUNK)
                if len(head) < len(ELF_MAGIC):
                    head += block[:len(ELF_MAGIC)]
                    if len(head) >= len(ELF_MAGIC) and \
                            not head.startswith(ELF_MAGIC):
                        raise lzma.LZMAError('not an ELF file')
                out.write(block)
            if not head.startswith(ELF_MAGIC):
                raise lzma.LZMAError('not an ELF file')
    except (lzma.LZMAError, EOFError) as e:
        LOG.debug('No kernel in the xz stream at %d: %s', start, e)
        os.unlink(dest)
        return False
    return True


def has_pvh_note(path):
    """True if ELF ``path`` has a Xen PVH entry note.

    QEMU boots an ELF kernel directly only through that entry
    (XEN_ELFNOTE_PHYS32_ENTRY).
    """
    with open(path, 'rb') as f:
        ident = f.read(64)
        if len(ident) < 64 or not ident.startswith(ELF_MAGIC) or \
                ident[4] != 2:
            return False
        phoff, = struct.unpack_from('<Q', ident, 0x20)
        phentsize, phnum = struct.unpack_from('<HH', ident, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _flags, p_offset, _v, _p, p_filesz = struct.unpack(
                '<IIQQQQ', f.read(40))
            if p_type != 4:  # PT_NOTE
                continue
            f.seek(p_offset)
            notes = f.read(p_filesz)
            pos = 0
            while pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from('<III', notes, pos)
                name = notes[pos + 12:pos + 12 + namesz].rstrip(b'\0')
                if name == b'Xen' and ntype == 18:
                    return True
                pos += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(n):
    return (n + 3) & ~3


# -- modules --------------------------------------------------------------

def module_name(path):
    """``kernel/fs/ext4/ext4.ko.xz`` -> ``ext4`` (dashes as underscores)."""
    base = os.path.basename(path)
    base = base.split('.ko', 1)[0]
    return base.replace('-', '_')


def parse_modules_dep(text):
    """Parse modules.dep into ``{name: (path, [dependency names])}``."""
    deps = {}
    for line in text.splitlines():
        if ':' not in line:
            continue
        path, rest = line.split(':', 1)
        path = path.strip()
        deps[module_name(path)] = (path, [module_name(d)
                                          for d in rest.split()])
    return deps


def parse_modules_builtin(text):
    """Names of the built-in modules, from modules.builtin."""
    return {module_name(line.strip()) for line in text.splitlines()
            if line.strip()}


def module_load_order(deps, wanted, builtin=()):
    """Every module ``wanted`` needs, dependencies first, each once.

    :param deps: as returned by :func:`parse_modules_dep`.
    :param builtin: names built into the kernel: nothing to load.
    :returns: list of module paths relative to the modules directory.
    :raises GuestBuildError: for an unknown module or a dependency cycle.
    """
    order = []
    done = set()
    visiting = []

    def visit(name):
        name = name.replace('-', '_')
        if name in done:
            return
        if name in visiting:
            raise GuestBuildError(reason=_('module dependency cycle: %s') %
                                  ' -> '.join(visiting + [name]))
        if name not in deps:
            if name in builtin:
                done.add(name)
                return
            raise GuestBuildError(reason=_('kernel has no module %s') % name)
        visiting.append(name)
        path, needs = deps[name]
        for dep in needs:
            visit(dep)
        visiting.pop()
        done.add(name)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def _copy_module(src, dest):
    """Copy a module, uncompressing it: busybox insmod may lack xz/zstd."""
    if src.endswith('.xz'):
        opener = lzma.open
    elif src.endswith('.gz'):
        opener = gzip.open
    elif src.endswith('.zst'):
        with open(dest, 'wb') as out:
            _run(['zstd', '-dc', src], stdout=out)
        return
    else:
        shutil.copyfile(src, dest)
        return
    with opener(src, 'rb') as fin, open(dest, 'wb') as out:
        shutil.copyfileobj(fin, out, _CHUNK)


# -- initramfs ------------------------------------------------------------

def cpio_newc_entry(name, mode, data=b'', rdev=(0, 0), ino=1, nlink=1):
    """One entry of a ``newc`` cpio archive, as bytes."""
    name_b = name.encode() + b'\0'
    header = b'070701' + b''.join(b'%08X' % v for v in (
        ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
        len(name_b), 0))
    out = header + name_b
    out += b'\0' * (-len(out) % 4)
    out += data
    out += b'\0' * (-len(data) % 4)
    return out


def write_initramfs(dest, files):
    """Write a gzip'd newc cpio archive.

    :param files: list of ``(name, mode, data)``; ``data`` is bytes, the
        link target for a symlink, or ``(major, minor)`` for a device.
    """
    # Written in Python so the archive can hold /dev/console without mknod
    # on the host, with fixed owners and times (reproducible).
    with open(dest, 'wb') as raw, \
            gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as out:
        for ino, (name, mode, data) in enumerate(files, start=1):
            rdev = (0, 0)
            if isinstance(data, tuple):
                rdev, data = data, b''
            elif isinstance(data, str):
                data = data.encode()
            out.write(cpio_newc_entry(name, mode, data, rdev=rdev, ino=ino))
        out.write(cpio_newc_entry('TRAILER!!!', 0, ino=0, nlink=1))
