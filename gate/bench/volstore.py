"""Cinder volumes of the Nova benchmark as real files, copied for real.

The benchmark's Cinder is nova's CinderFixture; this store gives its
volumes a body. The volume snapshot is a sparse raw file of the volume's
size (Cinder sizes volumes in GiB) holding a real image at offset 0, and
every volume created from it is a real copy, ``qemu-img convert`` of the
snapshot into a new raw file, as a Cinder backend without copy-on-write
clones (LVM, for one) copies it. ``qemu-img convert`` skips zero blocks,
so the bytes it writes (the new file's allocated bytes) are a lower bound
of what such a backend copies; a byte-for-byte ``dd`` copies the full
volume size, reported beside it.
"""

import json
import os
import subprocess
import threading
import time

GiB = 1024 ** 3


class VolumeStoreError(Exception):
    """A volume file could not be made."""


def allocated_bytes(path):
    """Bytes allocated on disk for ``path`` (0 if it does not exist)."""
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def tree_allocated_bytes(top):
    """Allocated bytes of every regular file under ``top``."""
    total = 0
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                total += allocated_bytes(path)
    return total


def image_info(path, qemu_img='qemu-img'):
    """``qemu-img info`` of ``path`` as a dict."""
    proc = subprocess.run(
        [qemu_img, 'info', '-U', '--output=json', path],
        capture_output=True, text=True, check=False)
    if proc.returncode:
        raise VolumeStoreError('qemu-img info %s failed: %s' % (
            path, proc.stderr.strip()))
    return json.loads(proc.stdout)


def _convert(qemu_img, src, src_format, dest, existing=False):
    argv = [qemu_img, 'convert', '-q', '-f', src_format, '-O', 'raw']
    if existing:
        argv.append('-n')
    proc = subprocess.run(argv + [src, dest], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        raise VolumeStoreError('qemu-img convert %s -> %s failed: %s' % (
            src, dest, proc.stderr.strip()))


class VolumeStore:
    """Volume and snapshot files in one directory, with copy counters."""

    def __init__(self, directory, qemu_img='qemu-img'):
        self.directory = directory
        self.qemu_img = qemu_img
        self._lock = threading.Lock()
        self.sizes = {}
        self.created = 0
        self.deleted = 0
        self.bytes_written = 0
        self.copy_seconds = 0.0
        os.makedirs(directory, exist_ok=True)

    def path(self, name):
        return os.path.join(self.directory, name + '.raw')

    def make_snapshot(self, name, image):
        """A snapshot file: ``image`` at offset 0 of a whole-GiB volume.

        :returns: the snapshot's size in GiB.
        """
        info = image_info(image, self.qemu_img)
        size_gib = max(1, -(-info['virtual-size'] // GiB))
        path = self.path(name)
        with open(path, 'wb') as f:
            f.truncate(size_gib * GiB)
        _convert(self.qemu_img, image, info['format'], path, existing=True)
        self.sizes[name] = size_gib
        return size_gib

    def copy(self, snapshot, volume):
        """Create ``volume`` as a full copy of ``snapshot``; counted.

        :returns: bytes the copy wrote (allocated in the new file).
        """
        dest = self.path(volume)
        started = time.monotonic()
        _convert(self.qemu_img, self.path(snapshot), 'raw', dest)
        seconds = time.monotonic() - started
        written = allocated_bytes(dest)
        with self._lock:
            self.sizes[volume] = self.sizes[snapshot]
            self.created += 1
            self.bytes_written += written
            self.copy_seconds += seconds
        return written

    def delete(self, volume):
        with self._lock:
            self.sizes.pop(volume, None)
            self.deleted += 1
        try:
            os.unlink(self.path(volume))
        except FileNotFoundError:
            pass

    def counters(self):
        with self._lock:
            return {'created': self.created, 'deleted': self.deleted,
                    'bytes_written': self.bytes_written,
                    'copy_seconds': self.copy_seconds}
