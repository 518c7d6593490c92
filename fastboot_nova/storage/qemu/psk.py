"""Pre-shared keys of the host-to-host NBD exports (NBD over TLS-PSK).

The operator's key file is checked here, at the boundary, and copied into
a private directory as ``keys.psk``: QEMU's ``tls-creds-psk`` object takes
a directory, not a file. Keys are never logged; errors name the file and
the line, never its contents.
"""

import dataclasses
import os
import re
import stat

from fastboot_nova import exception
from fastboot_nova import fileutils

KEYS_FILE = 'keys.psk'
# gnutls splits each line at the first ':'; keep identities plain.
_IDENTITY_RE = re.compile(r'^[A-Za-z0-9_.@-]{1,64}\Z')
_PRIORITY_RE = re.compile(r'^[A-Za-z0-9%:+._!-]{1,512}\Z')
_KEY_RE = re.compile(r'^[0-9a-fA-F]{32,512}\Z')


@dataclasses.dataclass(frozen=True)
class ExportAuth:
    """What the engine needs to serve and to read over TLS-PSK."""

    psk_file: str
    identity: str
    #: GnuTLS priority string of both ends (QEMU appends the PSK key
    #: exchanges); None keeps QEMU's default.
    priority: str = None

    def install(self, directory):
        """Copy the keys into ``directory``/keys.psk (mode 0600).

        Re-read on every call, so a rotated key file takes effect when the
        daemons next create their credentials.
        """
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.path.islink(directory):
            raise _error('%s is a symbolic link; the keys are written only '
                         'into a real directory' % directory)
        os.chmod(directory, 0o700)
        data = _read_checked(self.psk_file)
        fileutils.write_private(os.path.join(directory, KEYS_FILE),
                                data.encode('ascii'))
        return directory


def _error(reason):
    return exception.ExportAuthError(reason=reason)


def _read_checked(path):
    if not os.path.isabs(path):
        raise _error('export_psk_file %r is not an absolute path' % path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise _error('cannot open export_psk_file %s: %s' % (
            path, e.strerror))
    with os.fdopen(fd, 'rb') as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _error('export_psk_file %s is not a regular file' % path)
        if st.st_mode & 0o077:
            raise _error('export_psk_file %s is readable or writable by '
                         'group or others (mode %04o); chmod 600 it' % (
                             path, stat.S_IMODE(st.st_mode)))
        raw = f.read(64 * 1024 + 1)
    if len(raw) > 64 * 1024:
        raise _error('export_psk_file %s is too large' % path)
    try:
        text = raw.decode('ascii')
    except UnicodeDecodeError:
        raise _error('export_psk_file %s is not ASCII text' % path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _error('export_psk_file %s holds no key' % path)
    seen = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        identity, sep, key = line.partition(':')
        if not sep or not _IDENTITY_RE.fullmatch(identity):
            raise _error('line %d of export_psk_file %s is not '
                         '"identity:hexkey" with an identity of letters, '
                         'digits and _.@- (at most 64)' % (number, path))
        if not _KEY_RE.fullmatch(key) or len(key) % 2:
            raise _error('the key on line %d of export_psk_file %s is not '
                         'an even number (32 to 512) of hex digits' % (
                             number, path))
        if identity in seen:
            raise _error('identity %s appears twice in export_psk_file %s'
                         % (identity, path))
        seen.add(identity)
    return '\n'.join(lines) + '\n'


def identities(path):
    """The identities of a checked key file, in file order."""
    return tuple(line.partition(':')[0]
                 for line in _read_checked(path).splitlines())


def from_opts(fastboot_opts, opts):
    """The ExportAuth of the options, or None for none.

    :param fastboot_opts: ``[fastboot]`` (export_auth, export_address).
    :param opts: ``[fastboot_qemu]`` (the key file and identity).
    Raises ExportAuthError on any inconsistency, before anything starts.
    """
    if fastboot_opts.export_auth == 'none':
        return None
    if not opts.export_psk_file:
        if fastboot_opts.export_address:
            raise _error(
                'export_address is set but export_psk_file is not: set '
                'export_psk_file (and export_psk_identity), or set '
                'export_auth = none to export without authentication')
        return None
    if not _IDENTITY_RE.fullmatch(opts.export_psk_identity or ''):
        raise _error('export_psk_identity must be 1 to 64 letters, digits '
                     'or _.@-')
    if opts.export_psk_identity not in identities(opts.export_psk_file):
        raise _error('export_psk_identity %s has no key in %s' % (
            opts.export_psk_identity, opts.export_psk_file))
    priority = opts.export_tls_priority or None
    if priority is not None and not _PRIORITY_RE.fullmatch(priority):
        raise _error('export_tls_priority must be a GnuTLS priority '
                     'string: letters, digits and %:+-._! (at most 512)')
    return ExportAuth(psk_file=opts.export_psk_file,
                      identity=opts.export_psk_identity, priority=priority)
