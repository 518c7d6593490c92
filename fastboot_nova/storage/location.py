"""Parsing of origin locations: local files/devices, NBD and RBD URLs.

A location is turned into a QEMU ``blockdev-add`` spec for the origin node,
never into a command line string.
"""

import dataclasses
import ipaddress
import os
import re
import stat
import urllib.parse

from fastboot_nova import exception
from fastboot_nova.storage import names
from fastboot_nova.storage import rbd

NBD_DEFAULT_PORT = 10809
#: Longer locations (a path is at most PATH_MAX) are refused, and shown
#: shortened.
MAX_LENGTH = 4096
_EXPORT_RE = re.compile(r'^[A-Za-z0-9_.:-]{1,255}\Z')
_HOST_RE = re.compile(r'^[A-Za-z0-9.:-]{1,253}\Z')
_LABEL_RE = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')
#: The dm backend's export of an image: ``<prefix>exp-<image>-<port>``.
_DM_EXPORT_RE = 'fb-[A-Za-z0-9]{1,64}-exp-%s-%d'
_LOCAL_HOSTS = ('localhost', 'localhost.localdomain')


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

    @property
    def backing_name(self):
        """The name a qcow2 file records as its backing."""
        return self.url

    def objects(self):
        """QEMU objects the node needs (an rbd key secret); none here."""
        return []

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
    if location.startswith(rbd.SCHEME + '://'):
        return rbd.parse(location)
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
        reason='only local paths, nbd://, nbd+unix:// and rbd:// are '
               'supported')


def check_address(address):
    """Return ``address`` if it is an IP address or a DNS host name.

    What another host may name as the address it serves on: a unicast IP
    address (not a wildcard, multicast or link-local one, which mean
    nothing to another host) or a host name of RFC 1123 labels. Raises
    ValueError with the reason otherwise.
    """
    if not isinstance(address, str) or not address:
        raise ValueError('it is empty')
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if len(address) > 253 or not all(
                _LABEL_RE.fullmatch(label)
                for label in address.rstrip('.').split('.')):
            raise ValueError('it is neither an IP address nor a host name')
        if address.rstrip('.').rsplit('.', 1)[-1].isdigit():
            raise ValueError('it is neither an IP address nor a host name')
        return address
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        raise ValueError('%s is not the address of one host' % address)
    return address


def _is_local(host):
    if host.lower().rstrip('.') in _LOCAL_HOSTS:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def export_matches(export, image, port):
    """True if ``export`` is an export of ``image`` by either backend.

    The qemu backend names the export of an image after the image; the dm
    backend ``fb-<id>-exp-<image>-<port>``. A parent's export of another
    name holds another image: another tenant's bytes.
    """
    return export == image or re.fullmatch(
        _DM_EXPORT_RE % (re.escape(image), port), export) is not None


def parse_parent(url, image=None, own=None):
    """Parse the export URL of a parent host; refuse anything else.

    A parent is another host's cache of the same image, read over TCP
    (with the TLS the hosts are configured for: only TCP exports get it):
    ``nbd://HOST[:PORT]/EXPORT``, HOST an IP address or a host name. What
    the coordinator hands out comes from other hosts, so a local socket
    (``nbd+unix://``, which would read another engine's image or hang this
    host's daemon on itself), a local path, an export of another image
    than ``image`` and this host's own export ``own`` are all refused.

    :raises InvalidLocation: with the reason.
    """
    if not isinstance(url, str) or not url.startswith('nbd://'):
        raise exception.InvalidLocation(
            location=url,
            reason='a parent must be another host\'s nbd://HOST:PORT/EXPORT '
                   'export over TCP')
    loc = parse(url)
    try:
        check_address(loc.host)
    except ValueError as e:
        raise exception.InvalidLocation(location=url,
                                        reason='the host is invalid: %s' % e)
    if urllib.parse.urlsplit(url).port == 0:
        raise exception.InvalidLocation(location=url,
                                        reason='the port is invalid')
    if image is not None and not export_matches(loc.export, image, loc.port):
        raise exception.InvalidLocation(
            location=url, reason='the export %s is not one of image %s'
                                 % (loc.export, image))
    if own and _is_own(loc, own):
        raise exception.InvalidLocation(
            location=url, reason='it is this host\'s own export')
    return loc


def _is_own(loc, own):
    if not own.startswith('nbd://'):
        return False
    try:
        mine = parse(own)
    except exception.InvalidLocation:
        return False
    if mine.kind != 'nbd-tcp':
        return False
    if (loc.port, loc.export) != (mine.port, mine.export):
        return False
    return loc.host.lower() == mine.host.lower() or _is_local(loc.host)


def check_parents(urls, image, origin=None, own=None):
    """Check a ``reparent``'s sources; the recorded ``origin`` may be one.

    Every other source must pass :func:`parse_parent`. Local paths are
    the origin attached again at another path (Nova's driver after a host
    reboot): they come from this host, not from another.
    """
    for url in urls:
        if url == origin or (isinstance(url, str) and '://' not in url):
            continue
        if origin and _same_url(url, origin):
            continue
        parse_parent(url, image=image, own=own)


def _same_url(url, origin):
    try:
        return parse(url).url == origin
    except exception.InvalidLocation:
        return False
