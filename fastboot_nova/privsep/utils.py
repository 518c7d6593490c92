"""What every privileged topic module shares: checks, the runner, confinement.

Argument checks come in two layers. The *syntax* checks (:func:`check_name`,
:func:`check_device`, :func:`check_int`) say whether a value can be given
to dmsetup, losetup or nbd-server at all; callers use them unprivileged
too. The *confinement* checks say whether the privileged daemon may touch
that object, and they are decided by the daemon alone, from the
configuration it was started with (:class:`Confinement`), never from what
the caller says:

- files (loop backing files, TLS files) only under ``[fastboot]
  state_path``, resolved with realpath (no symlink escape, no ``..``, no
  second hard link), or, for TLS, the configured ``[fastboot_dm]
  export_tls_*_file`` paths;
- device-mapper names only fastboot's own (``fb-<id>-``, which the engine
  derives from its state path, and the multipath attacher's ``fbmp-``);
- block devices only fastboot's own device-mapper devices, a configured
  cache device, or a device the host does not use: not mounted (nor any
  of its partitions), not swap, held by no device-mapper device but
  fastboot's, and no device-mapper device of another service (an LVM
  volume) except a multipath map (an os-brick origin).

A refusal is a :class:`Refused`, naming what was refused and why.

Tests replace :data:`_runner`, :data:`_is_block_device`,
:func:`device_sectors` and :data:`_device_info`, and install a
confinement with :func:`set_confinement`.
"""

import dataclasses
import json
import os
import re
import stat
import subprocess

from oslo_config import cfg

from fastboot_nova import exception
from fastboot_nova.i18n import _

#: Device-mapper names: what DM_NAME_LEN (128 with the NUL) allows, from a
#: conservative alphabet: nothing dmsetup, a shell or a path would treat
#: specially, and no leading '-' or '.'.
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]{0,126}\Z')
#: Device paths: under /dev, no '..', no metacharacters or spaces.
DEVICE_RE = re.compile(r'^/dev/[A-Za-z0-9_][A-Za-z0-9_.+:/-]{0,254}\Z')
#: Paths of files the daemon opens: absolute, plain characters.
FILE_RE = re.compile(r'^/[A-Za-z0-9_.+@/-]{1,1023}\Z')
#: Names of the devices (and nbd-servers) fastboot creates: an engine's
#: ``fb-<8 hex digits of its state path's hash>-``, and the multipath
#: attacher's ``fbmp-``.
OWN_NAME_RE = re.compile(r'^(fb-[0-9a-f]{8}-|fbmp-)[A-Za-z0-9_.+-]+\Z')
#: dm uuid prefix of a multipath map (an os-brick origin may be one).
MPATH_UUID = 'mpath-'
#: Largest device we accept: 2^50 sectors (512 PiB).
MAX_SECTORS = 1 << 50
#: Executables the backend runs, and the Debian package of each.
TOOL_PACKAGES = {'dmsetup': 'dmsetup', 'losetup': 'util-linux',
                 'modprobe': 'kmod', 'nbd-client': 'nbd-client',
                 'nbd-server': 'nbd-server'}


class InvalidDmArgument(exception.FastbootException):
    message = _("Invalid device-mapper argument %(what)s=%(value)r: "
                "%(reason)s.")


class Refused(InvalidDmArgument):
    """A well-formed argument the privileged daemon may not act on."""

    message = _("Refused %(what)s=%(value)r: %(reason)s.")


class DmCommandFailed(exception.FastbootException):
    message = _("dmsetup %(verb)s %(name)s failed: %(reason)s")


class ToolMissing(DmCommandFailed):
    message = _("%(tool)s is not installed (package %(package)s): the dm "
                "backend cannot run without it")


# -- running tools ---------------------------------------------------------

def _default_runner(argv, stdin=None):
    """Run ``argv``; return ``(returncode, stdout, stderr)`` as text."""
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True,
                              text=True, check=False, timeout=120,
                              stdin=None if stdin is not None else
                              subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, '', '%s: executable not found' % argv[0]
    except subprocess.TimeoutExpired:
        return 124, '', 'no answer in 120 s'
    return proc.returncode, proc.stdout, proc.stderr


#: ``runner(argv, stdin=None) -> (returncode, stdout, stderr)``; replaced
#: by tests.
_runner = _default_runner


def run_tool(argv, stdin=None):
    """``_runner(argv)``, turning a missing executable into ToolMissing."""
    code, out, err = _runner(argv, stdin=stdin)
    if code == 127:
        tool = os.path.basename(argv[0])
        raise ToolMissing(verb=argv[1] if len(argv) > 1 else '', name='',
                          reason='not installed', tool=tool,
                          package=TOOL_PACKAGES.get(tool, tool))
    return code, out, err


DMSETUP = 'dmsetup'


def dmsetup(verb, name, *args, stdin=None, ok_codes=(0,)):
    """Run ``dmsetup verb *args``; DmCommandFailed names ``name``."""
    argv = [DMSETUP, verb] + list(args)
    code, out, err = run_tool(argv, stdin=stdin)
    if code not in ok_codes:
        raise DmCommandFailed(verb=verb, name=name or '',
                              reason=(err or out).strip() or
                              'exit code %s' % code)
    return out


def create_device(name, table):
    """Create device-mapper device ``name`` with ``table``; its path."""
    check_name(name)
    code, _out, _err = run_tool([DMSETUP, 'info', name])
    if code == 0:
        raise DmCommandFailed(verb='create', name=name,
                              reason='a device of that name exists')
    # libdevmapper removes the device again if its table does not load,
    # so a failed create leaves nothing behind.
    dmsetup('create', name, name, stdin=table)
    return '/dev/mapper/' + name


# -- block devices -------------------------------------------------------

def _default_is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


#: ``is_block_device(path) -> bool``; replaced by tests.
_is_block_device = _default_is_block_device


def device_sectors(path):
    """Size of block device ``path`` in 512-byte sectors, from sysfs."""
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidDmArgument(what='device', value=path,
                                reason='not a block device')
    with open('/sys/dev/block/%d:%d/size' % (os.major(st.st_rdev),
                                             os.minor(st.st_rdev))) as f:
        return int(f.read())


@dataclasses.dataclass
class DeviceInfo:
    """What the host does with a block device, from sysfs and /proc."""

    #: Device-mapper name and uuid, None for other devices.
    dm_name: str = None
    dm_uuid: str = None
    #: Names of the devices stacked on it or on one of its partitions
    #: (device-mapper names where they have one).
    holders: tuple = ()
    #: It or one of its partitions is mounted, or is active swap.
    mounted: bool = False


#: Where sysfs and the mount and swap tables are read; tests point them
#: at a fake tree.
SYS = '/sys'
MOUNTINFO = '/proc/self/mountinfo'
SWAPS = '/proc/swaps'


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _holder_names(sysdir):
    names = []
    try:
        entries = sorted(os.listdir(os.path.join(sysdir, 'holders')))
    except OSError:
        return names
    for entry in entries:
        names.append(_read('%s/block/%s/dm/name' % (SYS, entry)) or entry)
    return names


def _swap_devnums():
    nums = set()
    try:
        with open(SWAPS) as f:
            lines = f.readlines()[1:]
    except OSError:
        return nums
    for line in lines:
        try:
            st = os.stat(line.split()[0])
        except (OSError, IndexError):
            continue
        if stat.S_ISBLK(st.st_mode):
            nums.add('%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    return nums


def _mounted_devnums():
    """``major:minor`` of every mounted file system and active swap."""
    nums = set()
    try:
        with open(MOUNTINFO) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2:
                    nums.add(fields[2])
    except OSError:
        pass
    return nums | _swap_devnums()


def sysfs_facts(devnum):
    """:class:`DeviceInfo` of block device ``major:minor``.

    A partition is judged with its whole disk: a free partition of the
    disk the host runs from is in use too.
    """
    sysdir = os.path.realpath('%s/dev/block/%s' % (SYS, devnum))
    info = DeviceInfo(dm_name=_read(os.path.join(sysdir, 'dm/name')),
                      dm_uuid=_read(os.path.join(sysdir, 'dm/uuid')))
    disk = sysdir
    if os.path.exists(os.path.join(sysdir, 'partition')):
        disk = os.path.dirname(sysdir)
    devnums, holders = {devnum, _read(os.path.join(disk, 'dev'))}, []
    holders += _holder_names(disk)
    try:
        entries = os.listdir(disk)
    except OSError:
        entries = []
    for entry in sorted(entries):
        part = os.path.join(disk, entry)
        if os.path.exists(os.path.join(part, 'partition')):
            devnums.add(_read(os.path.join(part, 'dev')))
            holders += _holder_names(part)
    info.holders = tuple(holders)
    info.mounted = bool(devnums & _mounted_devnums())
    return info


def _default_device_info(path):
    st = os.stat(path)
    return sysfs_facts('%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))


#: ``device_info(path) -> DeviceInfo``; replaced by tests.
_device_info = _default_device_info


# -- syntax checks (unprivileged, importable by callers) -----------------

def check_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidDmArgument(
            what='name', value=name,
            reason='use at most 127 letters, digits and . _ + - (not '
                   'first)')
    return name


def _plain_path(path):
    return '/../' not in path + '/' and '/./' not in path + '/' and \
        '//' not in path


def check_device(path, what='device', must_exist=True):
    if not isinstance(path, str) or not DEVICE_RE.fullmatch(path) or \
            not _plain_path(path):
        raise InvalidDmArgument(
            what=what, value=path,
            reason='expected a plain path under /dev')
    if must_exist and not _is_block_device(path):
        raise InvalidDmArgument(what=what, value=path,
                                reason='no such block device')
    return path


def check_int(value, what, low, high):
    # bool is an int: refuse it, True sectors is a bug.
    if isinstance(value, bool) or not isinstance(value, int) or \
            not low <= value <= high:
        raise InvalidDmArgument(what=what, value=value,
                                reason='expected an integer in [%d, %d]' %
                                (low, high))
    return value


# -- confinement -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Confinement:
    """What the privileged daemon may touch, from its configuration."""

    #: realpath of ``[fastboot] state_path``.
    state_path: str
    #: realpaths of ``[fastboot_dm] cache_device``.
    cache_devices: tuple = ()
    #: realpaths of ``[fastboot_dm] export_tls_cert/key/ca_file``.
    tls_files: tuple = ()


def _config_files():
    """The files the daemon was started with, else fastboot's defaults.

    privsep-helper gets the ``--config-file`` options of the service that
    started it (nova-compute: nova.conf). Without any (the ``fastboot``
    command keeps its configuration private, and a configured
    ``helper_command`` passes none), fastboot's default locations
    (/etc/fastboot/fastboot.conf) are read: root-owned files, never a
    path the caller chooses.
    """
    try:
        files = list(cfg.CONF.config_file or [])
        dirs = list(cfg.CONF.config_dir or [])
    except cfg.NoSuchOptError:
        files, dirs = [], []
    if not files and not dirs:
        files = cfg.find_config_files(project='fastboot')
    return files, dirs


def load_confinement(files=None, dirs=None):
    """The :class:`Confinement` of a configuration.

    :param files: configuration files (and ``dirs``, directories); by
        default those of this process (:func:`_config_files`).
    """
    from fastboot_nova.conf import dm as dm_opts
    from fastboot_nova.conf import fastboot as fastboot_opts

    if files is None and dirs is None:
        files, dirs = _config_files()
    conf = cfg.ConfigOpts()
    fastboot_opts.register_opts(conf)
    dm_opts.register_opts(conf)
    conf(args=[], project='fastboot', default_config_files=files or [],
         default_config_dirs=dirs or [])
    dm = conf.fastboot_dm
    tls = [dm.export_tls_cert_file, dm.export_tls_key_file,
           dm.export_tls_ca_file]
    return Confinement(
        state_path=os.path.realpath(conf.fastboot.state_path),
        cache_devices=tuple(os.path.realpath(d) for d in dm.cache_device),
        tls_files=tuple(os.path.realpath(p) for p in tls if p))


_confinement = None


def confinement():
    """This daemon's confinement, loaded once."""
    global _confinement
    if _confinement is None:
        _confinement = load_confinement()
    return _confinement


def set_confinement(value):
    """Install ``value`` (a :class:`Confinement`, or None to reload).

    Not an entrypoint: a caller of the daemon cannot reach it.
    """
    global _confinement
    _confinement = value


def _under(path, root):
    return path == root or path.startswith(root.rstrip('/') + '/')


def check_own_name(name, what='name', kind=None):
    """``name`` must be a device fastboot creates (of ``kind``, if given)."""
    check_name(name)
    if not OWN_NAME_RE.fullmatch(name):
        raise Refused(what=what, value=name,
                      reason='not a device fastboot created (names start '
                             'with fb-<id>- or fbmp-)')
    if kind is not None and not re.match(r'^fb-[0-9a-f]{8}-%s-' %
                                         re.escape(kind), name):
        raise Refused(what=what, value=name,
                      reason='not a fastboot %s device' % kind)
    return name


def check_state_file(path, what='path'):
    """A regular file under the state path; returns its realpath.

    The realpath is what the caller must use from here on: the name given
    may hold a symlink that could be swapped later.
    """
    if not isinstance(path, str) or not FILE_RE.fullmatch(path) or \
            not _plain_path(path):
        raise InvalidDmArgument(what=what, value=path,
                                reason='expected a plain absolute path')
    root = confinement().state_path
    real = os.path.realpath(path)
    if not _under(real, root):
        raise Refused(what=what, value=path,
                      reason='it is outside the state path %s' % root)
    return _check_single_file(real, path, what)


def _check_single_file(real, path, what):
    try:
        st = os.lstat(real)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise InvalidDmArgument(what=what, value=path,
                                reason='not a regular file')
    if st.st_nlink != 1:
        # A second name could be a file outside the state path.
        raise Refused(what=what, value=path,
                      reason='it has %d hard links' % st.st_nlink)
    return real


def check_tls_path(path, what):
    """A configured TLS file, or one under the state path; its realpath."""
    c = confinement()
    real = os.path.realpath(path)
    if real not in c.tls_files and not _under(real, c.state_path):
        raise Refused(what=what, value=path,
                      reason='not a configured [fastboot_dm] export_tls_* '
                             'file and not under the state path %s' %
                             c.state_path)
    return _check_single_file(real, path, what)


def check_own_device(path, what='device'):
    """``/dev/mapper/<name>`` of a device fastboot created."""
    check_device(path, what)
    if not path.startswith('/dev/mapper/'):
        raise Refused(what=what, value=path,
                      reason='not a device-mapper device of fastboot')
    check_own_name(path[len('/dev/mapper/'):], what)
    return path


def check_host_device(path, what='device'):
    """A block device the privileged daemon may build on.

    Fastboot's own device-mapper devices, a configured cache device, or a
    device the host does not use (see the module docstring).
    """
    check_device(path, what)
    info = _device_info(path)
    if info.dm_name is not None:
        if OWN_NAME_RE.fullmatch(info.dm_name):
            return path
        if not (info.dm_uuid or '').startswith(MPATH_UUID):
            raise Refused(what=what, value=path,
                          reason='it is device-mapper device %s, which '
                                 'fastboot did not create' % info.dm_name)
    if os.path.realpath(path) in confinement().cache_devices:
        return path
    if info.mounted:
        raise Refused(what=what, value=path,
                      reason='it or one of its partitions is mounted or '
                             'used as swap')
    foreign = [h for h in info.holders if not OWN_NAME_RE.fullmatch(h)]
    if foreign:
        raise Refused(what=what, value=path,
                      reason='it is in use by %s' % ', '.join(foreign))
    return path


def loop_backing_files():
    """``{loop device: backing file}`` of every attached loop device."""
    code, out, err = run_tool(['losetup', '--list', '--json', '--output',
                               'NAME,BACK-FILE'])
    if code != 0:
        raise DmCommandFailed(verb='list', name='loop devices',
                              reason=(err or out).strip() or
                              'exit code %s' % code)
    if not out.strip():
        return {}
    return {d['name']: (d.get('back-file') or '').strip()
            for d in json.loads(out).get('loopdevices', [])}
