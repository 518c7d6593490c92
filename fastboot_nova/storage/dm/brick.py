"""Origins attached through os-brick connectors (standalone hosts).

Under Nova the libvirt volume driver (os-brick) attaches a volume and the
engine only gets its ``device_path``. On a host driven by the ``fastboot``
CLI or agent, :class:`OriginAttachments` does that part: it attaches a
Cinder-style ``connection_info`` (``driver_volume_type`` + ``data``)
through ``os_brick.initiator.connector.InitiatorConnector.factory`` and
records the attachment in ``STATE_PATH/brick-origins.json`` so that
``fastboot image remove`` detaches it and ``fastboot reconcile`` attaches
it again after a reboot, before the engine rebuilds the cache.

Secrets (CHAP passwords, keyrings, NVMe DH-HMAC-CHAP keys) are kept only
in that file, created mode 0600 and replaced atomically; every message
and every value this module returns for display masks them.

os-brick runs its commands (iscsiadm, nvme, rbd) through its own privsep
context, ``os_brick.privileged.default``: argument vectors, never a shell.
The checks here refuse what a connector should never see anyway: an
unknown protocol, keys or values of the wrong type, control characters
and shell metacharacters.
"""

import contextlib
import copy
import json
import logging
import os
import re

from oslo_concurrency import lockutils

from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.i18n import _
from fastboot_nova.storage import state as state_mod

LOG = logging.getLogger(__name__)

RECORD_FILE = 'brick-origins.json'
#: A Cinder connection_info is a few hundred bytes; refuse far more.
MAX_CONNECTION_INFO_BYTES = 64 * 1024
#: Cinder ``driver_volume_type`` -> os-brick protocol. RBD is attached
#: with ``do_local_attach`` (a host block device, /dev/rbdN).
PROTOCOLS = {'iscsi': 'ISCSI', 'nvmeof': 'NVMEOF', 'rbd': 'RBD',
             'local': 'LOCAL'}
#: Keys whose values are secret, and key fragments that make a key secret.
SECRET_KEYS = frozenset(('auth_password', 'discovery_auth_password',
                         'keyring', 'secret_uuid'))
SECRET_FRAGMENTS = ('password', 'secret', 'keyring', 'dhchap', 'psk')
MASK = '***'
AUTH_METHODS = ('CHAP',)
REQUIRED = {
    'ISCSI': (('target_portal', 'target_portals'),
              ('target_iqn', 'target_iqns'),
              ('target_lun', 'target_luns')),
    'NVMEOF': (('target_nqn', 'nqn'),),
    'RBD': (('name',),),
    'LOCAL': (('device_path',),),
}
KEY_RE = re.compile(r'^[a-z][a-z0-9_]{0,63}\Z')
#: Printable ASCII without whitespace and without the characters a shell
#: (or an iscsiadm/rbd option parser) would treat specially.
FORBIDDEN = set(';&|$`<>(){}[]*?!~#\'"\\ \t\r\n')
MAX_VALUE = 1024
MAX_LIST = 64
MAX_DEPTH = 3
DEVICE_SCAN_ATTEMPTS = 3


class InvalidConnectionInfo(exception.FastbootException):
    message = _('Invalid connection info: %(reason)s.')


class UnsupportedProtocol(exception.FastbootException):
    message = _('Origin protocol %(protocol)r is not supported (supported: '
                '%(supported)s).')


class OriginAttachFailed(exception.FastbootException):
    message = _('Could not attach the origin of image %(image)s over '
                '%(protocol)s: %(reason)s.')


class OriginDetachFailed(exception.FastbootException):
    message = _('Could not detach the origin of image %(image)s over '
                '%(protocol)s: %(reason)s.')


class OriginChanged(exception.FastbootException):
    message = _('The origin of image %(image)s re-attached over '
                '%(protocol)s at %(path)s is not the recorded one '
                '(%(identity)s, was %(expected)s).')


def is_secret(key):
    key = key.lower()
    return key in SECRET_KEYS or any(f in key for f in SECRET_FRAGMENTS)


def mask(value):
    """A copy of ``value`` with every secret value replaced by ``***``."""
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_secret(k)
                    and v not in (None, '') else mask(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return value


def _check_scalar(key, value):
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise InvalidConnectionInfo(reason='%s is out of range' % key)
        return
    if not isinstance(value, str):
        raise InvalidConnectionInfo(
            reason='%s must be a string, an integer or a boolean, not %s'
                   % (key, type(value).__name__))
    shown = MASK if is_secret(key) else repr(value)
    if len(value) > MAX_VALUE:
        raise InvalidConnectionInfo(reason='%s is too long' % key)
    bad = sorted(set(value) & FORBIDDEN) or \
        [c for c in value if not c.isprintable() or not c.isascii()]
    if bad:
        raise InvalidConnectionInfo(
            reason='%s=%s holds a character that is not allowed (%r)' % (
                key, shown, MASK if is_secret(key) else bad[0]))


def _check_value(key, value, depth=0):
    """Check a scalar, or lists/objects of them, nested at most 3 deep.

    NVMe-oF ``portals`` are lists of ``[address, port, transport]``.
    """
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_DEPTH or len(value) > MAX_LIST:
            raise InvalidConnectionInfo(reason='%s is too large or too '
                                               'deeply nested' % key)
        if isinstance(value, dict):
            for k, v in value.items():
                _check_key(k)
                _check_value(k, v, depth + 1)
        else:
            for item in value:
                _check_value(key, item, depth + 1)
        return
    _check_scalar(key, value)


def _check_key(key):
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidConnectionInfo(
            reason='key %r is not a lower-case identifier' % (key,))


def validate_properties(protocol, props):
    """Check os-brick ``connection_properties``; return a copy."""
    if not isinstance(props, dict):
        raise InvalidConnectionInfo(reason='"data" must be an object')
    for key, value in props.items():
        _check_key(key)
        _check_value(key, value)
    for names in REQUIRED[protocol]:
        if not any(props.get(n) not in (None, '', []) for n in names):
            raise InvalidConnectionInfo(
                reason='%s needs %s' % (protocol, ' or '.join(names)))
    method = props.get('auth_method')
    if method:
        if str(method).upper() not in AUTH_METHODS:
            raise InvalidConnectionInfo(
                reason='auth_method %r is not supported (%s)' % (
                    method, ', '.join(AUTH_METHODS)))
        if not props.get('auth_username') or not props.get('auth_password'):
            raise InvalidConnectionInfo(
                reason='auth_method CHAP needs auth_username and '
                       'auth_password')
    if protocol == 'LOCAL' and not str(props['device_path']).startswith(
            '/dev/'):
        raise InvalidConnectionInfo(reason='LOCAL device_path must be '
                                           'under /dev')
    props = copy.deepcopy(props)
    if protocol == 'RBD':
        # A host block device (rbd map), never librbd in-process.
        props['do_local_attach'] = True
    return props


def parse_connection_info(info):
    """``(protocol, properties)`` of a Cinder ``connection_info`` dict.

    The protocol is checked first: an unknown one is refused before
    anything else is looked at.
    """
    if not isinstance(info, dict):
        raise InvalidConnectionInfo(reason='connection info must be a JSON '
                                           'object')
    kind = info.get('driver_volume_type')
    protocol = PROTOCOLS.get(kind.lower()) if isinstance(kind, str) \
        else None
    if protocol is None:
        raise UnsupportedProtocol(protocol=kind,
                                  supported=', '.join(sorted(PROTOCOLS)))
    return protocol, validate_properties(protocol, info.get('data'))


def load_connection_info(path):
    """Read and check a ``connection_info`` JSON file."""
    try:
        # Bounded, regular files only: /dev/zero or a FIFO must not hang
        # the command.
        info = json.loads(fileutils.read_bounded(path,
                                                 MAX_CONNECTION_INFO_BYTES))
    except OSError as e:
        raise InvalidConnectionInfo(reason='cannot read %s: %s' % (
            path, e.strerror))
    except exception.FastbootException as e:
        raise InvalidConnectionInfo(reason=e.msg)
    except ValueError as e:
        raise InvalidConnectionInfo(reason='%s is not JSON: %s' % (path, e))
    return parse_connection_info(info)


def make_connector(protocol, root_helper='sudo', use_multipath=False,
                   device_scan_attempts=DEVICE_SCAN_ATTEMPTS):
    """The os-brick connector for ``protocol`` (one of :data:`PROTOCOLS`)."""
    if protocol not in PROTOCOLS.values():
        raise UnsupportedProtocol(protocol=protocol,
                                  supported=', '.join(sorted(PROTOCOLS)))
    # Imported here: os-brick is heavy and only standalone hosts use it.
    from os_brick.initiator import connector
    return connector.InitiatorConnector.factory(
        protocol, root_helper, use_multipath=use_multipath,
        device_scan_attempts=device_scan_attempts)


def attach(protocol, connection_properties, connector=None):
    """Attach a volume; return os-brick's ``device_info`` (``path`` in it).

    Nothing is left attached when it fails: os-brick cleans up its own
    attempt, and a connection that came up without a usable device is
    disconnected here.
    """
    props = validate_properties(protocol, connection_properties)
    conn = connector or make_connector(protocol)
    LOG.info('Attaching %s origin %s', protocol, mask(props))
    device_info = conn.connect_volume(props)
    path = (device_info or {}).get('path')
    if not isinstance(path, str) or not path.startswith('/dev/'):
        with contextlib.suppress(Exception):
            conn.disconnect_volume(props, device_info, force=True,
                                   ignore_errors=True)
        raise exception.FastbootException(
            'os-brick returned no local block device (%r)' % (
                mask(device_info),))
    LOG.info('Attached %s origin at %s', protocol, path)
    return device_info


def detach(protocol, connection_properties, device_info, connector=None,
           force=False):
    conn = connector or make_connector(protocol)
    LOG.info('Detaching %s origin %s', protocol,
             (device_info or {}).get('path'))
    conn.disconnect_volume(connection_properties, device_info, force=force,
                           ignore_errors=force)


class OriginAttachments:
    """Attachments of image origins, recorded under the state path.

    The record file holds the full connection properties, secrets
    included, so a reboot needs nothing but the state path: it is created
    with mode 0600 and replaced atomically. :meth:`list` masks them.

    :param connector_factory: ``factory(protocol) -> connector``; tests
        inject fakes with ``connect_volume``/``disconnect_volume``.
    :param identity: ``identity(path) -> str`` of an attached device
        (the engine's ``devices.identity``: size and serial/WWID).
    """

    def __init__(self, state_path, connector_factory=None, identity=None):
        self.state_path = os.path.abspath(state_path)
        self.path = os.path.join(self.state_path, RECORD_FILE)
        self.lock_path = os.path.join(self.state_path, 'locks')
        os.makedirs(self.lock_path, mode=0o750, exist_ok=True)
        self._factory = connector_factory or self._make_connector
        self._identity = identity

    def _make_connector(self, protocol):
        # os-brick takes its external lock directory from the global
        # configuration; a value set there ([os_brick] lock_path) wins.
        from oslo_config import cfg

        import os_brick.opts  # noqa: F401 (registers [os_brick])
        if not cfg.CONF.os_brick.lock_path:
            cfg.CONF.set_default('lock_path', self.lock_path,
                                 'os_brick')
        return make_connector(protocol)

    # -- record file --------------------------------------------------------

    def _lock(self):
        return lockutils.lock('brick-origins', external=True,
                              lock_path=self.lock_path)

    def _read(self):
        try:
            with open(self.path, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        return data.get('origins', {})

    def _write(self, origins):
        # 0600, replaced atomically: it holds the secrets.
        state_mod.write_json(self.path, {'origins': origins})

    def list(self):
        """``{image: entry}`` with the secrets masked."""
        with self._lock():
            return mask(self._read())

    def get(self, image):
        with self._lock():
            entry = self._read().get(image)
        return mask(entry) if entry else None

    # -- attach / detach ----------------------------------------------------

    def _ident(self, path):
        return self._identity(path) if self._identity else None

    def attach(self, image, protocol, props):
        """Attach ``image``'s origin and record it; return the device path.

        Attaching an image that is recorded with the same properties
        attaches again (a no-op for a live iSCSI session) and returns the
        current path; other properties are refused.
        """
        props = validate_properties(protocol, props)
        with self._lock():
            origins = self._read()
            old = origins.get(image)
            if old and (old['protocol'], old['properties']) != (protocol,
                                                                 props):
                raise exception.ImageConflict(
                    image=image, existing='%s %s' % (
                        old['protocol'], mask(old['properties'])),
                    location='%s %s' % (protocol, mask(props)))
            conn = self._factory(protocol)
            try:
                info = attach(protocol, props, connector=conn)
            except exception.FastbootException as e:
                raise OriginAttachFailed(image=image, protocol=protocol,
                                         reason=_brick_reason(e, props))
            except Exception as e:
                raise OriginAttachFailed(image=image, protocol=protocol,
                                         reason=_brick_reason(e, props))
            path = info['path']
            try:
                identity = self._ident(path)
                if old and old.get('identity') and \
                        identity != old['identity']:
                    raise OriginChanged(image=image, protocol=protocol,
                                        path=path, identity=identity,
                                        expected=old['identity'])
                origins[image] = {'protocol': protocol, 'properties': props,
                                  'device_info': info, 'path': path,
                                  'identity': identity}
                self._write(origins)
            except BaseException:
                with contextlib.suppress(Exception):
                    detach(protocol, props, info, connector=conn, force=True)
                raise
        return path

    def detach(self, image, force=False):
        """Detach ``image``'s origin and forget it; False if not recorded."""
        with self._lock():
            origins = self._read()
            entry = origins.get(image)
            if entry is None:
                return False
            protocol = entry['protocol']
            try:
                detach(protocol, entry['properties'], entry['device_info'],
                       connector=self._factory(protocol), force=force)
            except Exception as e:
                raise OriginDetachFailed(
                    image=image, protocol=protocol,
                    reason=_brick_reason(e, entry['properties']))
            del origins[image]
            self._write(origins)
        return True

    def restore(self, relocate):
        """Attach every recorded origin again (after a reboot).

        ``relocate(image, path)`` tells the engine where the origin is now
        (``DmEngine.relocate_origin``): device names such as /dev/sdX are
        not stable across reboots. Returns ``(restored, failed)`` image
        lists; a failed image keeps its record and the engine reports its
        cache as failed.
        """
        restored, failed = [], []
        with self._lock():
            images = sorted(self._read())
        for image in images:
            with self._lock():
                entry = self._read().get(image)
            if entry is None:
                continue
            try:
                path = self.attach(image, entry['protocol'],
                                   entry['properties'])
                relocate(image, path)
            except exception.FastbootException as e:
                LOG.error('Could not attach the origin of image %s again: '
                          '%s', image, e.msg)
                failed.append(image)
            else:
                restored.append(image)
        return restored, failed


# -- what the CLI commands do (the kernel test drives these too) -------------

def add_image(engine, attachments, image, protocol, props):
    """Attach the origin, then cache it (``image add --connection-info``).

    A failed add leaves nothing attached that was not attached before.
    """
    recorded = attachments.get(image) is not None
    path = attachments.attach(image, protocol, props)
    try:
        return engine.add_image(image, path)
    except BaseException:
        if not recorded:
            with contextlib.suppress(exception.FastbootException):
                attachments.detach(image, force=True)
        raise


def remove_image(engine, attachments, image):
    """Remove the cache, then detach its origin (``fastboot image remove``).

    An attachment whose image the engine does not know (an add interrupted
    between the two steps) is detached too.
    """
    try:
        engine.remove_image(image)
    except exception.ImageNotFound:
        if not attachments.detach(image):
            raise
        return
    attachments.detach(image)


def reconcile(engine, attachments):
    """Attach recorded origins again, then ``engine.reconcile()``.

    Returns ``(report, restored, failed)``. Attachments of images the
    engine does not hold are detached and forgotten.
    """
    known = set(engine.state.read()['images'])
    for image in sorted(set(attachments.list()) - known):
        LOG.warning('Detaching the origin of image %s: not in the cache '
                    'group', image)
        with contextlib.suppress(exception.FastbootException):
            attachments.detach(image, force=True)
    restored, failed = attachments.restore(engine.relocate_origin)
    return engine.reconcile(), restored, failed


def secret_values(props):
    """The non-empty secret values of ``props`` (longest first)."""
    values = set()
    for key, value in (props or {}).items():
        if is_secret(key):
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v:
                    values.add(v)
    return sorted(values, key=len, reverse=True)


def _brick_reason(e, props=None):
    """A one-line reason from an os-brick error, secrets masked.

    An error can quote a command line (``iscsiadm ... -v PASSWORD``) that
    oslo's ``mask_password`` patterns do not catch: the known secret
    values are replaced too.
    """
    from oslo_utils import strutils
    text = getattr(e, 'msg', None) or str(e) or type(e).__name__
    text = strutils.mask_password(' '.join(text.split()))
    for value in secret_values(props):
        text = text.replace(value, MASK)
    return text
