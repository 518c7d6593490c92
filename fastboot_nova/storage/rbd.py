"""RBD origins: Cinder's ``rbd`` connection_info -> QEMU's userspace rbd.

An operator's compute reads a Ceph volume in userspace, through librbd
inside QEMU: no kernel rbd or nbd module, no ``rbd map``. The qemu backend
does the same: the cache's origin node is a ``driver=rbd`` blockdev in its
qemu-storage-daemon.

Cinder's RBD driver (``initialize_connection``) returns::

    {'driver_volume_type': 'rbd',
     'data': {'name': 'volumes/volume-<id>', 'hosts': ['10.0.0.1'],
              'ports': ['6789'], 'cluster_name': 'ceph',
              'auth_enabled': True, 'auth_username': 'cinder',
              'secret_type': 'ceph', 'secret_uuid': '<libvirt secret>',
              'keyring': '<keyring file contents, if rbd_keyring_conf>',
              ...}}

(A Cinder attachment shows the same ``data`` flat, ``driver_volume_type``
and ``attachment_id`` beside its keys; both forms are accepted.)

It becomes an origin location (what the engine records and ``fastboot
image add`` accepts)::

    rbd://POOL/IMAGE?conf=/etc/ceph/ceph.conf&user=cinder
        [&mon=HOST:PORT ...][&key_file=/path/to/0600/key]

The cephx key is never on a command line, in a location or in a log: it
comes from the keyring that ``conf`` names (as for Nova's ``[libvirt]
rbd_user`` with a keyring on the compute), or from ``key_file``, a file
readable by its owner only holding the base64 key, which the daemon reads
through a QEMU ``secret`` object. ``secret_uuid`` names a libvirt secret,
which a qemu-storage-daemon cannot use: it is checked and otherwise left
alone.

Every field is checked against a whole-string pattern before anything is
started; a bad one is an :class:`~fastboot_nova.exception.InvalidLocation`.
"""

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import stat
import urllib.parse
import uuid

from fastboot_nova import exception

SCHEME = 'rbd'
DEFAULT_PORT = 6789
DEFAULT_CONF_DIR = '/etc/ceph'
#: Under the engine's state path: keys of RBD origins (files, 0600).
KEY_DIR = 'rbd-keys'
#: Pool and image names as Cinder/Glance/Nova make them, nothing a
#: ``rbd:`` file name or a shell would treat specially.
POOL_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z')
IMAGE_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}\Z')
#: A cephx client id (without ``client.``).
USER_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z')
CLUSTER_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z')
PORT_RE = re.compile(r'^[0-9]{1,5}\Z')
HOST_RE = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z')
PATH_RE = re.compile(r'^/[A-Za-z0-9_./+-]{1,1023}\Z')
#: A cephx key: base64 of 28 bytes (40 characters).
KEY_RE = re.compile(r'^[A-Za-z0-9+/]{38}==\Z')
_KEYRING_KEY_RE = re.compile(r'^\s*key\s*=\s*(\S+)\s*$', re.MULTILINE)
MAX_MONS = 16
#: A keyring of a few clients is a few hundred bytes.
MAX_KEY_FILE = 4096
#: Prefix of the id of the QEMU secret object holding a key.
SECRET_PREFIX = 'fb-rbd-key-'


def _bad(location, reason):
    return exception.InvalidLocation(location=location, reason=reason)


@dataclasses.dataclass(frozen=True)
class RbdLocation:
    """An RBD image read through librbd (``kind == 'rbd'``)."""

    url: str
    pool: str
    image: str
    conf: str
    user: str = None
    mons: tuple = ()  # ((host, port), ...)
    key_file: str = None
    kind: str = 'rbd'
    # The fields the engine reads on every location.
    path: str = None
    is_nbd: bool = False

    @property
    def secret_id(self):
        if not self.key_file:
            return None
        digest = hashlib.sha256(self.key_file.encode()).hexdigest()[:16]
        return SECRET_PREFIX + digest

    def objects(self):
        """QEMU objects the node needs, as ``object-add`` arguments.

        The key is read by QEMU from ``key_file``; only its path goes
        over QMP.
        """
        if not self.key_file:
            return []
        return [{'qom-type': 'secret', 'id': self.secret_id,
                 'file': self.key_file, 'format': 'base64'}]

    def _spec(self):
        spec = {'driver': 'rbd', 'pool': self.pool, 'image': self.image,
                'conf': self.conf}
        if self.user:
            spec['user'] = self.user
        if self.mons:
            spec['server'] = [{'host': h, 'port': str(p)}
                              for h, p in self.mons]
        return spec

    def blockdev(self, node_name, reconnect_delay=0, fmt='raw',
                 tls_creds=None):
        """``blockdev-add`` arguments of a read-only rbd node.

        ``reconnect_delay`` and ``tls_creds`` are NBD settings: librbd
        reconnects to the monitors and OSDs by itself.
        """
        spec = dict(self._spec(), **{'node-name': node_name,
                                     'read-only': True,
                                     'auto-read-only': False})
        if self.key_file:
            spec['key-secret'] = self.secret_id
            spec['auth-client-required'] = ['cephx']
        if fmt != 'raw':
            return {'driver': fmt, 'node-name': node_name,
                    'read-only': True,
                    'file': dict(spec, **{'node-name': node_name + '-rbd'})}
        return spec

    @property
    def backing_name(self):
        """A backing file name any QEMU on this host can open (no key)."""
        return 'json:' + _json(dict(self._spec(), **{'read-only': True}))


def _json(spec):
    return json.dumps(spec, sort_keys=True, separators=(',', ':'))


def check_path(location, value, what):
    if not isinstance(value, str) or not PATH_RE.fullmatch(value) or \
            '/../' in value + '/' or '/./' in value + '/':
        raise _bad(location, '%s must be a plain absolute path' % what)
    return value


def check_host(location, host):
    if not isinstance(host, str):
        raise _bad(location, 'a monitor host must be a string')
    candidate = host[1:-1] if host.startswith('[') and \
        host.endswith(']') else host
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        if not HOST_RE.fullmatch(host) or '..' in host:
            raise _bad(location, 'monitor host %r is neither an IP address '
                                 'nor a host name' % host)
        return host
    if ip.is_unspecified or ip.is_multicast:
        raise _bad(location, 'monitor host %s is not one host' % host)
    return str(ip)


def check_port(location, port):
    if isinstance(port, bool) or not isinstance(port, (int, str)) or \
            not PORT_RE.fullmatch(str(port)) or not 0 < int(port) < 65536:
        raise _bad(location, 'monitor port %r is not a TCP port' % (port,))
    return int(port)


def _check(location, value, pattern, what):
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(location, '%s %r is invalid' % (what, value)
                   if isinstance(value, str) and len(value) < 300
                   else '%s is invalid' % what)
    return value


def check_key_file(location, path):
    """A regular file, owned by us, readable by its owner only."""
    check_path(location, path, 'key_file')
    try:
        st = os.lstat(path)
    except OSError as e:
        raise _bad(location, 'key_file: %s' % e.strerror)
    if not stat.S_ISREG(st.st_mode):
        raise _bad(location, 'key_file is not a regular file')
    if st.st_mode & 0o077:
        raise _bad(location, 'key_file must not be readable by group or '
                             'others (mode 0600)')
    if st.st_uid != os.geteuid():
        raise _bad(location, 'key_file is not owned by this user')
    return path


def check_conf(location, path):
    check_path(location, path, 'conf')
    if not os.path.isfile(path):
        raise _bad(location, 'the Ceph configuration %s does not exist'
                             % path)
    return path


def _mon_text(host, port):
    if ':' in host:
        return '[%s]:%d' % (host, port)
    return '%s:%d' % (host, port)


def _parse_mon(location, text):
    host, sep, port = text.rpartition(':')
    if not sep:
        raise _bad(location, 'mon=%r needs HOST:PORT' % text[:100])
    return check_host(location, host), check_port(location, port)


def make_url(pool, image, conf, user=None, mons=(), key_file=None):
    query = [('conf', conf)]
    if user:
        query.append(('user', user))
    query += [('mon', _mon_text(h, p)) for h, p in mons]
    if key_file:
        query.append(('key_file', key_file))
    return 'rbd://%s/%s?%s' % (pool, image,
                                urllib.parse.urlencode(query, safe='/:[]'))


def shown(url):
    """``url`` without its query: what an error may show of it.

    The query may hold anything a user pasted, a key included.
    """
    head, sep, _query = url.partition('?')
    return head[:200] + ('?...' if sep else '')


def parse(url):
    """Parse and check an ``rbd://`` location; an :class:`RbdLocation`."""
    try:
        return _parse(url)
    except exception.InvalidLocation as e:
        raise _bad(shown(url), e.kwargs['reason'])


def _parse(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != SCHEME:
        raise _bad(url, 'not an rbd:// location')
    if parts.fragment or '@' in parts.netloc or parts.port is not None:
        raise _bad(url, 'rbd://POOL/IMAGE takes no user, port or fragment '
                        '(monitors go in mon=HOST:PORT)')
    pool = _check(url, parts.netloc, POOL_RE, 'pool')
    image = _check(url, parts.path[1:], IMAGE_RE, 'image')
    try:
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True,
                                      strict_parsing=True)
    except ValueError:
        raise _bad(url, 'the query is malformed')
    unknown = set(query) - {'conf', 'user', 'mon', 'key_file'}
    if unknown:
        raise _bad(url, 'unknown parameter(s) %s'
                        % ', '.join(sorted(k[:40] for k in unknown)))
    for key in ('conf', 'user', 'key_file'):
        if len(query.get(key, [])) > 1:
            raise _bad(url, '%s is given more than once' % key)
    if 'conf' not in query:
        raise _bad(url, 'it needs conf=/path/to/ceph.conf')
    conf = check_conf(url, query['conf'][0])
    user = query.get('user', [None])[0]
    if user is not None:
        _check(url, user, USER_RE, 'user')
    if len(query.get('mon', [])) > MAX_MONS:
        raise _bad(url, 'more than %d monitors' % MAX_MONS)
    mons = tuple(_parse_mon(url, m) for m in query.get('mon', []))
    key_file = query.get('key_file', [None])[0]
    if key_file is not None:
        check_key_file(url, key_file)
    return RbdLocation(url=make_url(pool, image, conf, user, mons, key_file),
                       pool=pool, image=image, conf=conf, user=user,
                       mons=mons, key_file=key_file)


def _keyring_key(keyring):
    """The one cephx key in a keyring's text, checked."""
    found = _KEYRING_KEY_RE.findall(keyring)
    if len(found) != 1 or not KEY_RE.fullmatch(found[0]):
        raise _bad('rbd connection_info',
                   'keyring must hold exactly one valid cephx key')
    return found[0]


def write_key_file(directory, user, mons, key):
    """Write ``key`` to a 0600 file under ``directory``; its path.

    The name depends on the client and the monitors only, so the same
    cluster's key is written once; it is replaced atomically.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    digest = hashlib.sha256(repr((user, tuple(mons))).encode()).hexdigest()
    path = os.path.join(os.path.abspath(directory),
                        'rbd-%s.key' % digest[:16])
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 0o600)
    with os.fdopen(fd, 'w') as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key)
    os.rename(tmp, path)
    return path


def is_rbd(connection_info):
    kind = (connection_info or {}).get('driver_volume_type')
    return isinstance(kind, str) and kind.lower() == 'rbd'


def location_from_connection_info(connection_info, conf=None,
                                  key_dir=None):
    """The ``rbd://`` origin location of a Cinder rbd connection_info.

    :param conf: the compute's Ceph configuration; default
        ``/etc/ceph/<cluster_name>.conf``.
    :param key_dir: where a ``keyring`` passed in the connection_info
        (Cinder's ``rbd_keyring_conf``) is written as a 0600 key file;
        without it such a keyring is refused.
    """
    what = 'rbd connection_info'
    if not isinstance(connection_info, dict) or not is_rbd(connection_info):
        raise _bad(what, 'driver_volume_type is not rbd')
    data = connection_info.get('data')
    if data is None and 'name' in connection_info:
        # A Cinder attachment's (``openstack volume attachment create
        # --connect``): the data with driver_volume_type beside it, as
        # Nova gets it before it adds "data" back.
        data = connection_info
    if not isinstance(data, dict):
        raise _bad(what, '"data" must be an object')
    name = data.get('name')
    if not isinstance(name, str) or name.count('/') != 1:
        raise _bad(what, 'name must be POOL/IMAGE')
    pool, image = name.split('/')
    _check(what, pool, POOL_RE, 'pool')
    _check(what, image, IMAGE_RE, 'image')
    hosts = data.get('hosts') or []
    ports = data.get('ports') or []
    if not isinstance(hosts, list) or not isinstance(ports, list) or \
            len(hosts) != len(ports) or len(hosts) > MAX_MONS:
        raise _bad(what, 'hosts and ports must be lists of the same length '
                         '(at most %d)' % MAX_MONS)
    mons = tuple((check_host(what, h), check_port(what, p))
                 for h, p in zip(hosts, ports, strict=True))
    cluster = data.get('cluster_name') or 'ceph'
    _check(what, cluster, CLUSTER_RE, 'cluster_name')
    user = data.get('auth_username') or None
    if user is not None:
        _check(what, user, USER_RE, 'auth_username')
    if data.get('auth_enabled') and not user:
        raise _bad(what, 'auth_enabled needs auth_username')
    secret_type = data.get('secret_type')
    if secret_type not in (None, '', 'ceph'):
        raise _bad(what, 'secret_type must be ceph')
    secret_uuid = data.get('secret_uuid')
    if secret_uuid not in (None, ''):
        try:
            uuid.UUID(str(secret_uuid))
        except ValueError:
            raise _bad(what, 'secret_uuid is not a UUID')
    conf = check_conf(what, conf or os.path.join(DEFAULT_CONF_DIR,
                                                 cluster + '.conf'))
    key_file = None
    keyring = data.get('keyring')
    if keyring not in (None, ''):
        if not isinstance(keyring, str) or len(keyring) > MAX_KEY_FILE:
            raise _bad(what, 'keyring is invalid')
        if not key_dir:
            raise _bad(what, 'it carries a keyring but no key directory '
                             'is configured')
        key_file = write_key_file(key_dir, user, mons, _keyring_key(keyring))
    return make_url(pool, image, conf, user, mons, key_file)
