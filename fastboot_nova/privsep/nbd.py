"""Privileged NBD calls: serve a host's cached image, connect to a parent.

Parent side: :func:`start_server` runs one ``nbd-server`` process serving
one block device read-only on one address and port. The configuration and
the allow list are files this module writes (never command-line strings).
The server listens on the given address only and accepts only the listed
client networks (``authfile``); given TLS files, it also requires TLS
before any option (``force_tls``, ``tlsonly``) and a client certificate
signed by the given CA (``cacertfile``: nbd-server asks for the peer's
certificate and drops a session whose certificate is missing or does not
verify).

Child side: :func:`connect` attaches a parent's export to a free
``/dev/nbdN`` read-only, over TLS with a client certificate when given
one (``-certfile -keyfile -cacertfile -tlshostname``); :func:`disconnect`
detaches it.

Every entrypoint checks its arguments before anything runs and runs the
tools with argument lists. Confinement (:mod:`~.utils`): a server serves
only fastboot's own device-mapper devices, never on a wildcard address
without TLS, and TLS files are only the configured ``[fastboot_dm]
export_tls_*_file`` paths or files under the state path. Tests replace
:data:`_spawn`, :data:`_nbd_state` and the runner of :mod:`~.utils`.
"""

import contextlib
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import time

from fastboot_nova.i18n import _
import fastboot_nova.privsep
from fastboot_nova.privsep import utils

NBD_SERVER = 'nbd-server'
NBD_CLIENT = 'nbd-client'
#: Configuration, allow list, pid file and log of each server.
RUN_DIR = '/run/fastboot-nbd'
NBD_DEV_RE = re.compile(r'^/dev/nbd[0-9]{1,4}\Z')
#: Unprivileged ports only: the daemon has no CAP_NET_BIND_SERVICE.
PORT_MIN, PORT_MAX = 1024, 65535
MAX_ALLOWED = 64
#: Seconds a server gets to listen after start, and to exit after SIGTERM.
START_WAIT = STOP_WAIT = 15.0
#: Seconds a server and its per-client children get to go after SIGKILL.
KILL_WAIT = 5.0
#: nbd-client request timeout, in seconds.
CLIENT_TIMEOUT = 30
TCP_LISTEN = '0A'
#: Paths written into nbd-server's configuration (a GLib key file, which
#: reads backslash escapes) and given to nbd-client: plain characters only.
TLS_PATH_RE = re.compile(r'^/[A-Za-z0-9._+@/-]{1,4095}\Z')
#: A DNS name (letters, digits, hyphens, dots) or an IP address.
HOSTNAME_RE = re.compile(
    r'^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
    r'(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$')


class NbdFailed(utils.DmCommandFailed):
    message = _("NBD %(verb)s %(name)s failed: %(reason)s")


def _default_spawn(argv, log_path):
    """Run a command that daemonizes; its output goes to ``log_path``.

    Not through pipes: a daemon would keep them open and the wait would
    never end.
    """
    with open(log_path, 'ab') as log:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  timeout=60, check=False)
        except FileNotFoundError:
            return 127
        except subprocess.TimeoutExpired:
            return 124
    return proc.returncode


def _default_nbd_state():
    """``{'/dev/nbdN': connected}`` for every nbd device, from sysfs."""
    devices = {}
    try:
        names = os.listdir('/sys/block')
    except OSError:
        return devices
    for name in names:
        if re.fullmatch(r'nbd[0-9]{1,4}', name):
            # The pid attribute exists while a connection is configured.
            devices['/dev/' + name] = os.path.exists(
                '/sys/block/%s/pid' % name)
    return devices


#: ``spawn(argv, log_path) -> returncode``; replaced by tests.
_spawn = _default_spawn
#: ``nbd_state() -> {device: connected}``; replaced by tests.
_nbd_state = _default_nbd_state


# -- validation (unprivileged, importable by callers) --------------------

def check_address(value, what='address'):
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise utils.InvalidDmArgument(what=what, value=value,
                                      reason='expected an IP address')


def check_port(value):
    return utils.check_int(value, 'port', PORT_MIN, PORT_MAX)


def check_allowed(allowed):
    """Client networks a server accepts: a non-empty list of CIDRs."""
    if isinstance(allowed, str) or not isinstance(allowed, (list, tuple)) \
            or not 1 <= len(allowed) <= MAX_ALLOWED:
        raise utils.InvalidDmArgument(
            what='allowed', value=allowed,
            reason='expected 1 to %d client networks' % MAX_ALLOWED)
    nets = []
    for net in allowed:
        try:
            nets.append(str(ipaddress.ip_network(net, strict=False)))
        except (TypeError, ValueError):
            raise utils.InvalidDmArgument(
                what='allowed', value=net,
                reason='expected an address or a network in CIDR form')
    return nets


def check_nbd_device(device):
    if not isinstance(device, str) or not NBD_DEV_RE.fullmatch(device):
        raise utils.InvalidDmArgument(what='device', value=device,
                                      reason='expected /dev/nbdN')
    return device


def check_tls_file(path, what, must_exist=True):
    """An absolute path of plain characters to an existing regular file."""
    if not isinstance(path, str) or not TLS_PATH_RE.fullmatch(path) or \
            '/../' in path + '/' or '/./' in path + '/' or '//' in path:
        raise utils.InvalidDmArgument(
            what=what, value=path,
            reason='expected an absolute path of letters, digits and '
                   '._+@/-')
    if must_exist and not os.path.isfile(path):
        raise utils.InvalidDmArgument(what=what, value=path,
                                      reason='no such regular file')
    return path


def check_tls_files(cert_file, key_file, ca_file, must_exist=True):
    """``None`` for no TLS, else the three checked paths.

    All three or none: a server without ``cacertfile`` would not check
    client certificates, and a client without a CA would not check the
    server's.
    """
    given = (cert_file, key_file, ca_file)
    if given == (None, None, None):
        return None
    if None in given:
        raise utils.InvalidDmArgument(
            what='tls', value=given,
            reason='give the certificate, key and CA files, or none')
    return tuple(check_tls_file(p, w, must_exist) for p, w in zip(
        given, ('cert_file', 'key_file', 'ca_file'), strict=True))


def _confined_tls(cert_file, key_file, ca_file):
    """check_tls_files, then the confinement: configured TLS files or
    files under the state path. Returns their realpaths.
    """
    tls = check_tls_files(cert_file, key_file, ca_file)
    if tls is None:
        return None
    return tuple(utils.check_tls_path(p, w) for p, w in zip(
        tls, ('cert_file', 'key_file', 'ca_file'), strict=True))


def check_hostname(value):
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(value))
        if HOSTNAME_RE.fullmatch(value):
            return value
    raise utils.InvalidDmArgument(what='tls_hostname', value=value,
                                  reason='expected a DNS name or an IP '
                                         'address')


def server_config(export, device, address, port, authfile, tls=None):
    """Text of an ``nbd-server`` configuration with one read-only export.

    :param tls: ``(cert_file, key_file, ca_file)`` to require TLS and a
        client certificate signed by ``ca_file``; None for plain NBD.

    Every value has been checked against a strict pattern, so none can
    start a new line or section.
    """
    utils.check_name(export)
    utils.check_device(device, must_exist=False)
    address = check_address(address)
    check_port(port)
    tls_generic = tls_export = ''
    if tls is not None:
        cert, key, ca = check_tls_files(*tls, must_exist=False)
        tls_generic = ('force_tls = true\n'
                       'certfile = %s\n'
                       'keyfile = %s\n'
                       'cacertfile = %s\n' % (cert, key, ca))
        tls_export = 'tlsonly = true\n'
    return ('[generic]\n'
            'listenaddr = %s\n'
            'port = %d\n'
            'allowlist = false\n'
            '%s'
            '[%s]\n'
            'exportname = %s\n'
            'readonly = true\n'
            'authfile = %s\n'
            '%s' % (address, port, tls_generic, export, device, authfile,
                    tls_export))


def authfile_text(allowed):
    return ''.join(n + '\n' for n in check_allowed(allowed))


def _paths(name):
    base = os.path.join(RUN_DIR, utils.check_own_name(name))
    return {k: base + '.' + k for k in ('conf', 'allow', 'pid', 'log')}


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _proc_stat(pid):
    """``(comm, state, ppid)`` of ``pid`` from /proc, or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            text = f.read()
    except OSError:
        return None
    # comm is in parentheses and may itself hold spaces or parentheses.
    head, _sep, tail = text.rpartition(')')
    fields = tail.split()
    if len(fields) < 2:
        return None
    return head.partition('(')[2], fields[0], int(fields[1])


def _server_alive(pid):
    """Whether ``pid`` is a running nbd-server (not a reused pid).

    A zombie is not: until its parent (init, for a daemon) reaps it, it
    keeps its name but serves nothing.
    """
    if not pid:
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] == NBD_SERVER and stat[1] != 'Z'


def _server_children(pid):
    """The per-client nbd-server processes forked by server ``pid``."""
    children = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[0] == NBD_SERVER and stat[2] == pid:
                children.append(int(entry))
    return children


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(_server_alive(p) for p in pids) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _server_alive(p)]


def _listening(address, port):
    want = ipaddress.ip_address(address)
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            hexaddr, hexport = local.split(':')
            if state != TCP_LISTEN or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(hexaddr)
            # /proc shows each 32-bit word in host (little-endian) order.
            raw = b''.join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            if ipaddress.ip_address(raw) == want:
                return True
    return False


# -- entrypoints: the parent side ----------------------------------------

@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def start_server(name, device, address, port, allowed, cert_file=None,
                 key_file=None, ca_file=None):
    """Serve ``device`` read-only as export ``name`` on ``address:port``.

    :param allowed: client addresses or networks (CIDR) the server
        accepts; everything else is refused at connect time.
    :param cert_file: with ``key_file`` and ``ca_file``: serve over TLS
        only, to clients with a certificate signed by ``ca_file``.
    :returns: the server's pid.
    """
    paths = _paths(name)
    utils.check_own_device(device)
    address = check_address(address)
    check_port(port)
    allow = authfile_text(allowed)
    tls = _confined_tls(cert_file, key_file, ca_file)
    if tls is None and ipaddress.ip_address(address).is_unspecified:
        raise utils.Refused(what='address', value=address,
                            reason='a wildcard address serves every '
                                   'network: give TLS files or one '
                                   'address')
    config = server_config(name, device, address, port, paths['allow'],
                           tls)
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    if _server_alive(_read_pid(paths['pid'])):
        raise NbdFailed(verb='start', name=name,
                        reason='a server of that name is running')
    if _listening(address, port):
        raise NbdFailed(verb='start', name=name,
                        reason='%s port %d is in use' % (address, port))
    for key, text in (('allow', allow), ('conf', config)):
        with open(paths[key], 'w') as f:
            f.write(text)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths['pid'])
    code = _spawn([NBD_SERVER, '-C', paths['conf'], '-p', paths['pid']],
                  paths['log'])
    deadline = time.monotonic() + START_WAIT
    while True:
        pid = _read_pid(paths['pid'])
        if code == 0 and _server_alive(pid) and _listening(address, port):
            return pid
        if code != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if _server_alive(pid):
        os.kill(pid, signal.SIGTERM)
    reason = 'exit code %s' % code
    with contextlib.suppress(OSError):
        with open(paths['log']) as f:
            reason += ': ' + f.read()[-500:].strip()
    _remove_files(paths)
    raise NbdFailed(verb='start', name=name, reason=reason)


def _remove_files(paths):
    for path in paths.values():
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def stop_server(name):
    """Stop server ``name`` (and its connections); remove its files."""
    paths = _paths(name)
    pid = _read_pid(paths['pid'])
    if _server_alive(pid):
        children = _server_children(pid)
        # The server ends its per-client children on SIGTERM; one stuck
        # on a slow device gets SIGKILL, with its children, so that an
        # unexport always ends and never leaves the device open.
        os.kill(pid, signal.SIGTERM)
        left = _wait_gone([pid] + children, STOP_WAIT)
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        if _wait_gone(left, KILL_WAIT):
            raise NbdFailed(verb='stop', name=name,
                            reason='pid %d did not exit' % pid)
    _remove_files(paths)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def list_servers():
    """Names of the running servers: ``[[name, pid]]``."""
    try:
        files = os.listdir(RUN_DIR)
    except FileNotFoundError:
        return []
    result = []
    for fname in sorted(files):
        if fname.endswith('.pid'):
            pid = _read_pid(os.path.join(RUN_DIR, fname))
            if _server_alive(pid):
                result.append([fname[:-len('.pid')], pid])
    return result


# -- entrypoints: the child side -----------------------------------------

def _nbd_client(verb, name, *args):
    code, out, err = utils._runner([NBD_CLIENT] + list(args))
    if code != 0:
        raise NbdFailed(verb=verb, name=name,
                        reason=(err or out).strip() or
                        'exit code %s' % code)
    return out


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def connect(address, port, export, cert_file=None, key_file=None,
            ca_file=None, tls_hostname=None, timeout=CLIENT_TIMEOUT):
    """Attach ``export`` of the server at ``address:port`` read-only.

    ``timeout``: seconds after which a request that got no answer fails
    (and dm-multipath moves to another path).

    :param cert_file: with ``key_file`` and ``ca_file``: connect over TLS
        with this client certificate, and accept only a server
        certificate signed by ``ca_file`` for ``tls_hostname`` (default:
        ``address``).
    :returns: the ``/dev/nbdN`` it now backs.
    """
    address = check_address(address)
    check_port(port)
    utils.check_name(export)
    utils.check_int(timeout, 'timeout', 1, 300)
    tls = _confined_tls(cert_file, key_file, ca_file)
    tls_args = []
    if tls is not None:
        tls_args = ['-certfile', tls[0], '-keyfile', tls[1],
                    '-cacertfile', tls[2]]
        if tls_hostname is not None:
            tls_args += ['-tlshostname', check_hostname(tls_hostname)]
    elif tls_hostname is not None:
        raise utils.InvalidDmArgument(what='tls_hostname',
                                      value=tls_hostname,
                                      reason='only with TLS files')
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    # One connect at a time picks a free device: two would pick the same.
    with open(os.path.join(RUN_DIR, 'connect.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _nbd_state()
        free = sorted((d for d, used in state.items() if not used),
                      key=lambda d: int(d[len('/dev/nbd'):]))
        if not free:
            raise NbdFailed(verb='connect', name=export,
                            reason='no free /dev/nbdN (is the nbd module '
                                   'loaded?)')
        device = free[0]
        try:
            _nbd_client('connect', export, address, str(port), device,
                        '-name', export, '-readonly',
                        '-timeout', str(timeout), *tls_args)
        except NbdFailed as e:
            reason = e.kwargs['reason']
            if tls is None or not any(w in reason for w in (
                    'negotiation magic', 'TLS', 'certificate')):
                raise
            # A failed TLS session shows up in nbd-client as a bad
            # negotiation magic; say what it means.
            raise NbdFailed(verb='connect', name=export, reason=(
                'TLS session refused (the parent rejects this host\'s '
                'certificate, or the parent\'s certificate is not signed '
                'by %s or does not name %s): %s' % (
                    tls[2], tls_hostname or address, reason)))
        _ClientRecord(device).write(address, port, export)
    return device


class _ClientRecord:
    """What :func:`connect` made: ``RUN_DIR/nbdN.client``.

    The daemon's own file (root-only RUN_DIR): :func:`disconnect` detaches
    only devices it connected, never another service's NBD connection.
    """

    def __init__(self, device):
        self.path = os.path.join(RUN_DIR, os.path.basename(device) +
                                 '.client')

    def write(self, address, port, export):
        with open(self.path, 'w') as f:
            f.write('%s %d %s\n' % (address, port, export))

    def exists(self):
        return os.path.exists(self.path)

    def remove(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def disconnect(device):
    """Detach ``/dev/nbdN`` that :func:`connect` attached.

    A device that is not connected is fine; one connected by anything
    else is refused.
    """
    check_nbd_device(device)
    record = _ClientRecord(device)
    if not _nbd_state().get(device):
        record.remove()
        return False
    if not record.exists():
        raise utils.Refused(what='device', value=device,
                            reason='fastboot did not connect it')
    _nbd_client('disconnect', device, '-d', device)
    record.remove()
    return True


def connected_devices():
    """Connected ``/dev/nbdN`` devices (unprivileged, from sysfs)."""
    return sorted(d for d, used in _nbd_state().items() if used)
