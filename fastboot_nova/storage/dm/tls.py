"""X.509 credentials of the dm backend's NBD exports (NBD over TLS).

Why NBD over TLS and not LIO iSCSI with CHAP: nbd-server (3.24, Debian
bookworm) given ``cacertfile`` asks the client for its certificate and
drops the session when there is none or when it is not signed by that CA;
measured with that nbd-server and a TLS client with no certificate, with a
certificate of another CA, and with a good one (only the last was served;
``tests/kernel/guest_export.py`` repeats it with nbd-client). Both ends
authenticate each other (CHAP authenticates the initiator only, unless
mutual CHAP is set up, and sends nothing encrypted), the data is
encrypted on the wire, and it keeps the NBD paths and dm-multipath the
backend already has.

One set of files serves both sides of a host: its certificate is the
server certificate of its exports and the client certificate of its
attaches, so a certificate needs the ``serverAuth`` and ``clientAuth``
key usages (or none) and, for the server side, the host's export address
(or ``export_tls_hostname``) in its subjectAltName.

The files are checked here, before any server starts or any client
connects: absolute paths, regular files, the key not readable or writable
by group or others (mode 0600: nbd-server and nbd-client run as root
through privsep, so only root needs to read it; a 0640 key shared with a
group is refused on purpose, the key authenticates the host to every
other host). The files are not read here, so a key readable by root only
passes the check of an unprivileged service. Key material is never read
into a log or an error.
"""

import dataclasses
import logging
import os
import stat

from fastboot_nova import exception
import fastboot_nova.privsep.nbd

LOG = logging.getLogger(__name__)

_OPTS = (('cert_file', 'export_tls_cert_file'),
         ('key_file', 'export_tls_key_file'),
         ('ca_file', 'export_tls_ca_file'))


def _error(reason):
    return exception.ExportAuthError(reason=reason)


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """The certificate, key and CA of a host, and the name to expect."""

    cert_file: str
    key_file: str
    ca_file: str
    #: Name a parent's certificate must carry; None: its address.
    hostname: str = None

    def check(self):
        """Raise ExportAuthError unless the files are usable; return self."""
        for attr, opt in _OPTS:
            path = getattr(self, attr)
            try:
                fastboot_nova.privsep.nbd.check_tls_file(path, opt,
                                                         must_exist=False)
            except exception.FastbootException:
                raise _error('%s %r must be an absolute path of letters, '
                             'digits and ._+@/-' % (opt, path))
            try:
                st = os.stat(path)
            except OSError as e:
                raise _error('cannot use %s %s: %s' % (opt, path,
                                                       e.strerror))
            if not stat.S_ISREG(st.st_mode):
                raise _error('%s %s is not a regular file' % (opt, path))
            if attr == 'key_file' and st.st_mode & 0o077:
                raise _error('%s %s is readable or writable by group or '
                             'others (mode %04o); chmod 600 it' % (
                                 opt, path, stat.S_IMODE(st.st_mode)))
        if self.hostname is not None:
            try:
                fastboot_nova.privsep.nbd.check_hostname(self.hostname)
            except exception.FastbootException:
                raise _error('export_tls_hostname %r is not a DNS name or '
                             'an IP address' % (self.hostname,))
        return self

    def server_kwargs(self):
        """Keyword arguments of ``privsep.nbd.start_server``."""
        return {'cert_file': self.cert_file, 'key_file': self.key_file,
                'ca_file': self.ca_file}

    def client_kwargs(self):
        """Keyword arguments of ``privsep.nbd.connect``."""
        kw = self.server_kwargs()
        if self.hostname is not None:
            kw['tls_hostname'] = self.hostname
        return kw


def from_opts(opts, export_auth):
    """The checked TlsFiles of the ``[fastboot_dm]`` options, or None.

    :param export_auth: ``[fastboot] export_auth``: ``tls`` (or its
        former qemu name ``psk``) or ``none``.
    None only with ``export_auth = none`` (logged as a warning). Raises
    ExportAuthError, naming the option, on anything missing or unsafe.
    """
    if export_auth == 'none':
        LOG.warning('[fastboot] export_auth = none: host-to-host NBD '
                    'exports have no authentication and no encryption; '
                    'only the listen address and the client networks '
                    'restrict them')
        return None
    missing = [opt for attr, opt in _OPTS if not getattr(opts, opt)]
    if missing:
        raise _error('export_auth = tls needs %s; set them, or set '
                     'export_auth = none to export without '
                     'authentication' % ', '.join(missing))
    return TlsFiles(cert_file=opts.export_tls_cert_file,
                    key_file=opts.export_tls_key_file,
                    ca_file=opts.export_tls_ca_file,
                    hostname=opts.export_tls_hostname or None).check()
