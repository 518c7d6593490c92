"""The dm backend in the hosts' tree: exports to children, parents.

What the host agent (:mod:`fastboot_nova.hierarchy.agent`) asks of an
engine, the way the ``qemu`` backend does it:

- **exports**: with ``[fastboot] export_address`` set, each image's cache
  device is served read-only by one nbd-server
  (:class:`~fastboot_nova.storage.dm.export.NbdExporter`, TLS with
  certificates unless ``[fastboot] export_auth = none``) on a port of
  ``[fastboot] export_port_min..export_port_max`` recorded with the image.
  ``export_url`` is then ``nbd://<address>:<port>/<export>``, the syntax
  the agent probes and the coordinator hands to children.
- **parents**: ``reparent(image, url, alternates)`` connects one NBD path
  per parent export, builds a dm-multipath device over them
  (``fb-<id>-mp-<image>.<n>``: the parents round-robin, and the host's own
  origin device as a second priority group) and points the image's origin
  device (``fb-<id>-origin-<image>``, the dm-linear its dm-cache reads
  misses from) at it with a live table swap. The origin device stays
  dm-linear: the kernel lets a device become multipath but never go
  back. A dead parent therefore costs the
  failed read one retry on the origin, never an error, before the agent
  moves to the coordinator's next assignment. ``reparent`` to the image's
  own location points the dm-linear back at the origin device, then
  removes the multipath device and disconnects the paths. The
  cache above is never rebuilt: its blocks stay warm.

The parents read from are recorded with their ``/dev/nbdN`` devices. When
an image's devices are rebuilt (after a reboot) they start on the origin:
the recorded paths are dropped and the agent assigns parents again.
"""

import contextlib
import logging
import urllib.parse

from fastboot_nova import exception
from fastboot_nova.i18n import _
import fastboot_nova.privsep.multipath
import fastboot_nova.privsep.nbd
from fastboot_nova.storage.dm import export as export_mod
from fastboot_nova.storage.dm import tls as tls_mod
from fastboot_nova.storage import location as location_mod

LOG = logging.getLogger(__name__)


class ParentError(exception.FastbootException):
    message = _("Cannot read image %(image)s from %(url)s: %(reason)s")


def _tls(engine):
    return tls_mod.from_opts(engine.opts,
                             engine.conf.fastboot.export_auth)


# -- exports ----------------------------------------------------------------

def exporting(engine):
    return bool(engine.conf.fastboot.export_address)


def exporter(engine):
    """The engine's NbdExporter (the one place its settings are read)."""
    return export_mod.NbdExporter(engine, engine.conf.fastboot.export_address,
                                  engine.opts.export_allowed,
                                  tls=_tls(engine))


def _host(address):
    return '[%s]' % address if ':' in address else address


def export_url(engine, image, entry):
    """Where children read ``image``; the local device when not exported."""
    port = entry.get('export_port')
    if not exporting(engine) or port is None:
        return engine.dm_path(engine.dm_name('cache', image))
    return 'nbd://%s:%d/%s' % (_host(engine.conf.fastboot.export_address),
                               port, export_mod.server_name(engine, image,
                                                            port))


def _allocate_port(engine, image):
    """The image's export port: recorded, else the first free one."""
    opts = engine.conf.fastboot
    with engine.state.update() as st:
        entry = st['images'][image]
        if entry.get('export_port') is not None:
            return entry['export_port']
        used = {e.get('export_port') for e in st['images'].values()}
        for port in range(opts.export_port_min, opts.export_port_max + 1):
            if port not in used:
                entry['export_port'] = port
                return port
    raise export_mod.ExportError(
        image=image, reason='no free port in [fastboot] export_port_min..'
                            'export_port_max (%d-%d)' % (
                                opts.export_port_min, opts.export_port_max))


def export(engine, image):
    """Serve ``image`` to children (started only if not running)."""
    if not exporting(engine):
        return None
    port = _allocate_port(engine, image)
    return exporter(engine).export(image, [port])


def unexport(engine, image):
    if not exporting(engine):
        return []
    return exporter(engine).unexport(image)


def ensure_exports(engine):
    """Restart the servers of ready images; return the images restarted."""
    if not exporting(engine):
        return []
    exp = exporter(engine)
    running = {name for name, _pid in
               fastboot_nova.privsep.nbd.list_servers()}
    restarted = []
    for image, entry in sorted(engine.state.read()['images'].items()):
        if entry.get('status') != 'ready':
            continue
        port = _allocate_port(engine, image)
        if exp.server_name(image, port) in running:
            continue
        try:
            exp.export(image, [port])
        except exception.FastbootException as e:
            LOG.error('Could not export image %s: %s', image, e.msg)
            continue
        restarted.append(image)
    return restarted


# -- parents ----------------------------------------------------------------

def _parse_parent(image, url, own=None):
    """``(address, port, export)`` of a parent export URL."""
    try:
        loc = location_mod.parse_parent(url, image=image, own=own)
    except exception.InvalidLocation as e:
        raise ParentError(image=image, url=url, reason=e.msg)
    host = urllib.parse.urlsplit(url).hostname
    try:
        address = fastboot_nova.privsep.nbd.check_address(host)
        fastboot_nova.privsep.nbd.check_port(loc.port)
        fastboot_nova.privsep.dm.check_name(loc.export)
    except exception.FastbootException as e:
        raise ParentError(image=image, url=url, reason=e.msg)
    return address, loc.port, loc.export


def parent_urls(entry):
    return [url for url, _dev in entry.get('parent_paths', [])]


def reparent(engine, image, location, alternates=()):
    """Read ``image``'s misses from ``location`` (then ``alternates``).

    The image's own origin location means no parent. Caller holds the
    image lock; the image's devices are live.
    """
    entry = engine.state.read()['images'].get(image)
    if entry is None or entry.get('status') != 'ready':
        raise exception.ImageNotFound(image=image)
    urls = []
    for url in [location] + list(alternates):
        if url != entry['location'] and url not in urls:
            urls.append(url)
    own = export_url(engine, image, entry)
    targets = [(url, _parse_parent(image, url, own)) for url in urls]
    segments = entry['segments']
    if targets and (len(segments) != 1 or segments[0][1] != 0):
        raise ParentError(image=image, url=urls[0],
                          reason='the origin is not one whole device')
    origin_dev = engine.dm_name('origin', image)
    if origin_dev not in engine.dm.live():
        raise exception.OriginUnavailable(
            location=entry['location'], image=image,
            reason='its devices are not active')
    old = entry.get('parent_paths', [])
    old_mp = entry.get('parent_mpath')
    fallback = segments[0][0]
    connected = set(fastboot_nova.privsep.nbd.connected_devices())
    reuse = {url: dev for url, dev in old if dev in connected}
    tls = _tls(engine) if targets else None
    made, paths, mp_name = [], [], None
    try:
        for url, (address, port, name) in targets:
            dev = reuse.get(url)
            if dev is None:
                dev = fastboot_nova.privsep.nbd.connect(
                    address, port, name, timeout=engine.opts.parent_timeout,
                    **(tls.client_kwargs() if tls else {}))
                made.append(dev)
            paths.append([url, dev])
        if paths:
            # A new multipath device per change: the old one keeps serving
            # until the origin device is switched over.
            gen = entry.get('parent_gen', 0) + 1
            mp_name = engine.dm_name('mp', '%s.%d' % (image, gen))
            fastboot_nova.privsep.multipath.create_parents_multipath(
                mp_name, [dev for _url, dev in paths], fallback)
            target = engine.dm_path(mp_name)
        else:
            target = fallback
        fastboot_nova.privsep.dm.retarget_linear(origin_dev, target)
    except BaseException:
        if mp_name:
            with contextlib.suppress(exception.FastbootException):
                engine.dm.remove_if_present(mp_name)
        _disconnect(made)
        raise
    with engine.state.update() as st:
        e = st['images'][image]
        e['parent_paths'] = paths
        e['parent_mpath'] = mp_name
        if mp_name:
            e['parent_gen'] = entry.get('parent_gen', 0) + 1
    if old_mp:
        with contextlib.suppress(exception.FastbootException):
            engine.dm.remove_if_present(old_mp)
    in_use = {dev for _url, dev in paths}
    _disconnect([dev for _url, dev in old if dev not in in_use])
    LOG.info('Image %s reads from %s', image,
             ', '.join(urls) if urls else 'its origin')


def _disconnect(devices):
    for dev in devices:
        try:
            fastboot_nova.privsep.nbd.disconnect(dev)
        except exception.FastbootException as e:
            LOG.warning('Could not disconnect parent path %s: %s', dev,
                        e.msg)


def drop_parents(engine, image):
    """Forget ``image``'s parent paths; its origin device is gone."""
    images = engine.state.read()['images']
    entry = images.get(image) or {}
    old = entry.get('parent_paths')
    if entry.get('parent_mpath'):
        engine.dm.remove_if_present(entry['parent_mpath'])
    if not old:
        return
    # A device another image records is that image's path now (device
    # numbers are reused after a reboot).
    others = {dev for name, e in images.items() if name != image
              for _url, dev in e.get('parent_paths', [])}
    connected = set(fastboot_nova.privsep.nbd.connected_devices())
    _disconnect([dev for _url, dev in old
                 if dev in connected and dev not in others])
    with engine.state.update() as st:
        if image in st['images']:
            for key in ('parent_paths', 'parent_mpath'):
                st['images'][image].pop(key, None)
