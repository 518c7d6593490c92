"""Parsing of origin locations: local files/devices and NBD URLs.

A location is turned into a QEMU ``blockdev-add`` spec for the origin node,
never into a command line string.
"""

import dataclasses
import os
import re
import stat
import urllib.parse

from fastboot_nova import exception
from fastboot_nova.storage import names

NBD_DEFAULT_PORT = 10809
#: Longer locations (a path is at most PATH_MAX) are refused, and shown
#: shortened.
MAX_LENGTH = 4096
_EXPORT_RE = re.compile(r'^[A-Za-z0-9_.:-]{1,255}$')
_HOST_RE = re.compile(r'^[A-Za-z0-9.:-]{1,253}$')


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed origin location."""

    url: str
    kind: str  # 'file', 'host_device', 'nbd-tcp' or 'nbd-unix'
    path: str = None
    host: str = None
    port: int = None
    export: str = None
    socket: str = None

    @property
    def is_nbd(self):
        return self.kind.startswith('nbd')

    def blockdev(self, node_name, reconnect_delay=0, fmt='raw',
                 tls_creds=None):
        """The ``blockdev-add`` arguments of a read-only node for this.

        ``tls_creds`` (the id of a client ``tls-creds-*`` object) makes an
        NBD-over-TCP node negotiate TLS.
        """
        if self.kind in ('file', 'host_device'):
            proto = {'driver': self.kind, 'filename': self.path,
                     'read-only': True, 'auto-read-only': False}
            if fmt == 'raw':
                spec = dict(proto, **{'node-name': node_name})
            else:
                spec = {'driver': fmt, 'node-name': node_name,
                        'read-only': True, 'file': proto}
            return spec
        if self.kind == 'nbd-tcp':
            server = {'type': 'inet', 'host': self.host,
                      'port': str(self.port)}
        else:
            server = {'type': 'unix', 'path': self.socket}
        spec = {'driver': 'nbd', 'node-name': node_name, 'server': server,
                'export': self.export, 'read-only': True,
                'reconnect-delay': reconnect_delay}
        if tls_creds and self.kind == 'nbd-tcp':
            spec['tls-creds'] = tls_creds
        return spec


def nbd_url(export, host=None, port=None, socket=None):
    """Build the canonical NBD URL for an export."""
    if socket:
        return 'nbd+unix:///%s?socket=%s' % (export, socket)
    if ':' in host:
        host = '[%s]' % host
    return 'nbd://%s:%d/%s' % (host, port, export)


def parse(location):
    """Parse and check ``location``; raise InvalidLocation if unusable.

    Local paths must exist and be regular files or block devices. NBD URLs
    are checked for syntax only; reachability is checked when the origin is
    opened.
    """
    if not isinstance(location, str) or not location:
        raise exception.InvalidLocation(location=location,
                                        reason='it is empty')
    if len(location) > MAX_LENGTH:
        raise exception.InvalidLocation(
            location=names.shown(location),
            reason='it is longer than %d characters' % MAX_LENGTH)
    if any(c in location for c in '\0\n\r'):
        raise exception.InvalidLocation(
            location=location, reason='it contains control characters')
    if '://' in location:
        return _parse_url(location)
    path = os.path.abspath(location)
    try:
        st = os.stat(path)
    except OSError as e:
        raise exception.InvalidLocation(location=location,
                                        reason=e.strerror)
    if stat.S_ISREG(st.st_mode):
        kind = 'file'
    elif stat.S_ISBLK(st.st_mode):
        kind = 'host_device'
    else:
        raise exception.InvalidLocation(
            location=location,
            reason='not a regular file or block device')
    if not os.access(path, os.R_OK):
        raise exception.InvalidLocation(location=location,
                                        reason='not readable')
    return Location(url=path, kind=kind, path=path)


def _parse_url(url):
    parts = urllib.parse.urlsplit(url)
    export = urllib.parse.unquote(parts.path.lstrip('/'))
    if not _EXPORT_RE.fullmatch(export):
        raise exception.InvalidLocation(
            location=url, reason='the export name is missing or invalid')
    if parts.scheme == 'nbd':
        if parts.query or parts.fragment or parts.username:
            raise exception.InvalidLocation(
                location=url, reason='unexpected query, fragment or user')
        host = parts.hostname
        if not host or not _HOST_RE.fullmatch(host):
            raise exception.InvalidLocation(location=url,
                                            reason='the host is invalid')
        try:
            port = parts.port or NBD_DEFAULT_PORT
        except ValueError:
            raise exception.InvalidLocation(location=url,
                                            reason='the port is invalid')
        return Location(url=nbd_url(export, host=host, port=port),
                        kind='nbd-tcp', host=host, port=port, export=export)
    if parts.scheme == 'nbd+unix':
        if parts.netloc:
            raise exception.InvalidLocation(
                location=url, reason='nbd+unix URLs take no host')
        query = urllib.parse.parse_qs(parts.query, strict_parsing=False)
        sockets = query.get('socket', [])
        if len(sockets) != 1 or not os.path.isabs(sockets[0]) or \
                set(query) != {'socket'}:
            raise exception.InvalidLocation(
                location=url,
                reason='it needs exactly one absolute ?socket= path')
        return Location(url=nbd_url(export, socket=sockets[0]),
                        kind='nbd-unix', export=export, socket=sockets[0])
    raise exception.InvalidLocation(
        location=url,
        reason='only local paths, nbd:// and nbd+unix:// are supported')
