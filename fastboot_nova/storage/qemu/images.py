"""qemu-img operations on cache and snapshot files."""

import json

from fastboot_nova import exception
from fastboot_nova import executor

SUPPORTED_ORIGIN_FORMATS = ('raw', 'qcow2')


class QemuImg:
    """Thin wrapper over ``qemu-img`` taking an injectable ``execute``."""

    def __init__(self, binary='qemu-img', execute=None):
        self.binary = binary
        self.execute = execute or executor.execute

    def create_cache(self, path, size, backing, backing_fmt, cluster_size):
        """A qcow2 cache file; ``backing`` is recorded for inspection only.

        The daemon opens the cache with an explicit backing node, so the
        recorded name need not be openable from here.
        """
        self.execute(self.binary, 'create', '-q', '-f', 'qcow2',
                     '-o', 'cluster_size=%d' % cluster_size,
                     '-u', '-b', backing, '-F', backing_fmt,
                     path, str(size))

    def create_overlay(self, path, size, backing_json):
        """A VM's copy-on-write qcow2 over the cache export.

        ``backing_json`` is a block spec; it is stored as a ``json:``
        backing name so that any QEMU opening the file reaches the cache
        with the right reconnect settings.
        """
        self.execute(self.binary, 'create', '-q', '-f', 'qcow2', '-u',
                     '-b', json_backing(backing_json), '-F', 'raw',
                     path, str(size))

    def create_overlay_on_file(self, path, size, backing_path):
        """A VM's copy-on-write qcow2 on a sealed (complete) cache file."""
        self.execute(self.binary, 'create', '-q', '-f', 'qcow2', '-u',
                     '-b', backing_path, '-F', 'qcow2', path, str(size))

    def drop_backing(self, path):
        """Erase the backing name of a complete qcow2 (header only).

        A complete cache reads nothing from its origin; without the name a
        VM opening the cache as its backing never connects to the origin.
        """
        self.execute(self.binary, 'rebase', '-q', '-u', '-f', 'qcow2',
                     '-b', '', path)

    def rebase_unsafe(self, path, backing, backing_fmt='raw'):
        """Point ``path`` at another backing without copying data."""
        self.execute(self.binary, 'rebase', '-q', '-u', '-f', 'qcow2',
                     '-b', backing, '-F', backing_fmt, path)

    def info(self, path, force_share=True):
        """``qemu-img info`` of one file, without opening its backing."""
        args = [self.binary, 'info', '--output=json']
        if force_share:
            args.append('-U')
        out, _err = self.execute(*args, path)
        return json.loads(out)

    def in_use(self, path):
        """True if a running process holds ``path``'s write lock."""
        try:
            # Without -U, info takes the shared locks a running VM denies.
            self.execute(self.binary, 'info', '--output=json', path)
        except exception.CommandFailed as e:
            if 'lock' in e.msg:
                return True
            raise
        return False

    def origin_format(self, path):
        """Format of a local origin file: raw or qcow2, else an error."""
        fmt = self.info(path).get('format')
        if fmt not in SUPPORTED_ORIGIN_FORMATS:
            raise exception.InvalidLocation(
                location=path,
                reason='format %s is not one of %s' % (
                    fmt, ', '.join(SUPPORTED_ORIGIN_FORMATS)))
        return fmt


def json_backing(spec):
    return 'json:' + json.dumps(spec, sort_keys=True,
                                separators=(',', ':'))
