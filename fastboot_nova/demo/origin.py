"""A stand-in storage array: serves one image read-only over NBD.

In production the origin is a Cinder volume on a SAN or Ceph. The demo,
the tests and the benchmarks serve a local image file through their own
qemu-storage-daemon instead, and count the bytes the array had to read for
it (the read syscalls of that daemon), which is the load a boot storm puts
on the real origin.
"""

import contextlib
import os
import tempfile

from fastboot_nova.storage import location
from fastboot_nova.storage.qemu import daemon as daemon_mod


class OriginServer:
    """Export ``image_path`` as ``export`` on a unix socket or TCP."""

    def __init__(self, image_path, export='origin', host=None, port=None,
                 run_dir=None, image_format='raw'):
        self.image_path = os.path.abspath(image_path)
        self.export = export
        self.host = host
        self.port = port
        self.image_format = image_format
        self._own_dir = run_dir is None
        self.run_dir = run_dir or tempfile.mkdtemp(prefix='fb-origin-')
        self.socket = os.path.join(self.run_dir, 'origin.sock')
        self.daemon = daemon_mod.StorageDaemon(self.run_dir)
        self._baseline = 0

    @property
    def url(self):
        if self.host:
            return location.nbd_url(self.export, host=self.host,
                                    port=self.port)
        return location.nbd_url(self.export, socket=self.socket)

    def start(self):
        self.daemon.start()
        if self.host:
            addr = {'type': 'inet',
                    'data': {'host': self.host, 'port': str(self.port)}}
        else:
            addr = {'type': 'unix', 'data': {'path': self.socket}}
        proto = {'driver': 'file', 'filename': self.image_path,
                 'read-only': True}
        with self.daemon.qmp() as qmp:
            qmp.execute('nbd-server-start', addr=addr)
            qmp.execute('blockdev-add', driver=self.image_format,
                        file=proto, **{'node-name': 'origin',
                                       'read-only': True})
            qmp.execute('block-export-add', type='nbd', id='origin',
                        name=self.export, writable=False,
                        **{'node-name': 'origin'})
        self.reset_counter()
        return self

    def _rchar(self):
        with open('/proc/%d/io' % self.daemon.pid()) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key == 'rchar':
                    return int(value)
        raise RuntimeError('no rchar in /proc/%d/io' % self.daemon.pid())

    def reset_counter(self):
        self._baseline = self._rchar()

    def bytes_read(self):
        """Bytes read by the array since start or the last reset.

        Includes the few bytes of NBD request headers and QMP traffic,
        which is negligible next to the 64 KiB clusters a cache fetches.
        """
        return self._rchar() - self._baseline

    def stop(self):
        self.daemon.stop()
        if self._own_dir:
            for name in ('origin.sock', 'qmp.sock', 'daemon.pid'):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.run_dir, name))
            with contextlib.suppress(OSError):
                os.rmdir(self.run_dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
