"""Serve a host's cached images to child hosts over NBD (the dm backend).

A parent exports the dm-cache device of an image (what its own VMs read)
read-only, through one ``nbd-server`` per port: each port is one path a
child can use, and a server can go away without taking the others along,
which is what a child's multipath device fails over between.

Each server listens on one address and accepts only the client networks
it is given (nbd-server's ``authfile``). Given :class:`TlsFiles
<fastboot_nova.storage.dm.tls.TlsFiles>`, it serves over TLS only and
only to clients with a certificate signed by the configured CA (see
:mod:`fastboot_nova.storage.dm.tls`); without, NBD has no authentication
and no encryption: keep such exports on a storage network that only
hosts of the cloud reach.
"""

import dataclasses
import logging

from fastboot_nova import exception
from fastboot_nova.i18n import _
import fastboot_nova.privsep.nbd
from fastboot_nova.storage import names

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ImageExport:
    image: str
    #: ``(address, port, export name)`` of each path, as
    #: :meth:`fastboot_nova.storage.dm.multipath.MultipathAttacher.attach`
    #: takes them.
    paths: tuple


def server_name(engine, image, port):
    """The nbd-server (and NBD export) name of ``image`` on ``port``."""
    return '%sexp-%s-%d' % (engine.prefix, image, port)


class ExportError(exception.FastbootException):
    message = _("Cannot export image %(image)s: %(reason)s")


class NbdExporter:
    """Exports of one :class:`~fastboot_nova.storage.dm.engine.DmEngine`.

    :param address: the address the servers listen on.
    :param allowed: client addresses or CIDR networks they accept.
    :param tls: a :class:`~fastboot_nova.storage.dm.tls.TlsFiles` to serve
        over TLS to clients with a certificate of its CA only; None (the
        default) serves plain NBD.
    """

    def __init__(self, engine, address, allowed, tls=None):
        self.engine = engine
        self.address = fastboot_nova.privsep.nbd.check_address(address)
        self.allowed = fastboot_nova.privsep.nbd.check_allowed(allowed)
        self.tls = tls.check() if tls is not None else None

    def _prefix(self, image):
        return '%sexp-%s-' % (self.engine.prefix, image)

    def server_name(self, image, port):
        return server_name(self.engine, image, port)

    def _servers(self, image):
        prefix = self._prefix(image)
        return [(name, int(name[len(prefix):])) for name, _pid in
                fastboot_nova.privsep.nbd.list_servers()
                if name.startswith(prefix) and
                name[len(prefix):].isdigit()]

    def export(self, image, ports):
        """Serve the cache of ``image`` on each of ``ports``."""
        names.validate(image, 'image')
        if isinstance(ports, (str, int)) or not ports or \
                len(set(ports)) != len(ports):
            raise ExportError(image=image,
                              reason='expected a list of distinct ports')
        for port in ports:
            fastboot_nova.privsep.nbd.check_port(port)
        entry = self.engine.state.read()['images'].get(image)
        cache = self.engine.dm_name('cache', image)
        device = self.engine.dm_path(cache)
        if not entry or entry.get('status') != 'ready' or \
                not self.engine.devices.is_block(device):
            raise ExportError(image=image,
                              reason='it is not in the cache group')
        running = {port for _name, port in self._servers(image)}
        started = []
        try:
            for port in ports:
                if port in running:
                    continue
                fastboot_nova.privsep.nbd.start_server(
                    self.server_name(image, port), device, self.address,
                    port, self.allowed,
                    **(self.tls.server_kwargs() if self.tls else {}))
                started.append(port)
        except Exception:
            for port in started:
                fastboot_nova.privsep.nbd.stop_server(
                    self.server_name(image, port))
            raise
        LOG.info('Exported image %s on %s ports %s (%s)', image,
                 self.address, list(ports),
                 'TLS' if self.tls else 'no authentication')
        return ImageExport(image=image, paths=tuple(
            (self.address, port, self.server_name(image, port))
            for port in ports))

    def unexport(self, image, ports=None):
        """Stop the servers of ``image`` (all, or those on ``ports``)."""
        names.validate(image, 'image')
        stopped = []
        for name, port in self._servers(image):
            if ports is None or port in ports:
                fastboot_nova.privsep.nbd.stop_server(name)
                stopped.append(port)
        return sorted(stopped)
