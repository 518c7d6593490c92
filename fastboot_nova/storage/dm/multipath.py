"""Attach a parent's export on a child host over several paths.

Each path is one read-only NBD connection (``/dev/nbdN``) to one of the
parent's servers; a dm-multipath device over them is what the child uses
as the origin of its own cache (``DmEngine.add_image(image,
'/dev/mapper/fbmp-<name>')``). When a path's I/O fails, dm-multipath
marks it failed and sends the I/O down another path.

Nothing is recorded on disk: the paths of a device are read back from
its table, so detach works after a restart of the service too.
"""

import contextlib
import logging
import os
import re

from fastboot_nova import exception
from fastboot_nova.i18n import _
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.multipath
import fastboot_nova.privsep.nbd

LOG = logging.getLogger(__name__)

#: Our multipath devices; not the engines' ``fb-<id>-`` prefix, so an
#: engine's reconcile never takes them for its own leftovers.
PREFIX = 'fbmp-'


class AttachError(exception.FastbootException):
    message = _("Cannot attach %(name)s: %(reason)s")


def _sysfs_name(majmin):
    """``/dev/<name>`` of the block device ``major:minor``."""
    return '/dev/' + os.path.basename(
        os.readlink('/sys/dev/block/' + majmin))


class MultipathAttacher:
    """Multipath devices of a child host over NBD paths.

    :param tls: a :class:`~fastboot_nova.storage.dm.tls.TlsFiles`: connect
        over TLS with its certificate and accept only a parent certificate
        of its CA; None (the default) connects with plain NBD.
    """

    def __init__(self, dev_name=None, tls=None):
        self._dev_name = dev_name or _sysfs_name
        self.tls = tls.check() if tls is not None else None

    def dm_name(self, name):
        return fastboot_nova.privsep.dm.check_name(PREFIX + name)

    def device(self, name):
        return '/dev/mapper/' + self.dm_name(name)

    def attach(self, name, paths):
        """Connect every path, then build the multipath device over them.

        :param paths: ``(address, port, export name)`` per path, e.g.
            :attr:`ImageExport.paths` of the parent.
        :returns: the multipath device path.
        """
        dm_name = self.dm_name(name)
        if isinstance(paths, str) or not paths or \
                len(paths) > fastboot_nova.privsep.multipath.MAX_PATHS or \
                len({tuple(p) for p in paths}) != len(paths):
            raise AttachError(name=name, reason='expected 1 to %d distinct '
                              'paths' %
                              fastboot_nova.privsep.multipath.MAX_PATHS)
        for address, port, export in paths:
            fastboot_nova.privsep.nbd.check_address(address)
            fastboot_nova.privsep.nbd.check_port(port)
            fastboot_nova.privsep.dm.check_name(export)
        if dm_name in self.list():
            raise AttachError(name=name, reason='it is attached')
        devices = []
        try:
            for address, port, export in paths:
                devices.append(fastboot_nova.privsep.nbd.connect(
                    address, port, export,
                    **(self.tls.client_kwargs() if self.tls else {})))
            path = fastboot_nova.privsep.multipath.create_multipath(
                dm_name, devices)
        except Exception:
            for dev in devices:
                with contextlib.suppress(exception.FastbootException):
                    fastboot_nova.privsep.nbd.disconnect(dev)
            raise
        LOG.info('Attached %s over %s', path, ', '.join(devices))
        return path

    def paths(self, name):
        """``/dev/...`` of each path of an attached device, in order."""
        table = fastboot_nova.privsep.dm.table(self.dm_name(name))
        return [self._dev_name(t) for t in table.split()
                if re.fullmatch(r'[0-9]+:[0-9]+', t)]

    def status(self, name):
        """Per path: ``{'path': '/dev/nbdN', 'active': bool, ...}``."""
        parsed = fastboot_nova.privsep.multipath.parse_status(
            fastboot_nova.privsep.dm.status(self.dm_name(name))) or []
        for p in parsed:
            p['path'] = self._dev_name(p['device'])
        return parsed

    def detach(self, name):
        """Remove the multipath device, then disconnect its paths."""
        dm_name = self.dm_name(name)
        if dm_name not in self.list():
            return []
        devices = self.paths(name)
        fastboot_nova.privsep.dm.remove_device(dm_name)
        for dev in devices:
            if fastboot_nova.privsep.nbd.NBD_DEV_RE.fullmatch(dev):
                fastboot_nova.privsep.nbd.disconnect(dev)
        LOG.info('Detached %s', dm_name)
        return devices

    def list(self):
        return sorted(n for n, _a, _b in
                      fastboot_nova.privsep.dm.list_devices()
                      if n.startswith(PREFIX))
