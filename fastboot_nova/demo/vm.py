"""Run the test guest under QEMU and time its boot.

One QEMU process per VM, its serial console on a pipe that is copied to a
log file and watched for the lines the guest's /init prints (see
:mod:`fastboot_nova.demo.guest`). A boot is timed from the QEMU launch to
the ``FASTBOOT-CHECKSUM`` line, which the guest prints once it has read its
payload through the disk it was given.

KVM is used only where a real guest kernel runs under it: some hosts have a
/dev/kvm that starts QEMU fine but cannot run a stock kernel (PVM-only
KVM), so the probe boots the guest kernel itself, and everything else falls
back to TCG. Every QEMU process is killed when its context ends, whatever
happened.
"""

import concurrent.futures
import dataclasses
import logging
import os
import select
import subprocess
import threading
import time

LOG = logging.getLogger(__name__)

QEMU = 'qemu-system-x86_64'
QBOOT_ROM = '/usr/share/qemu/qboot.rom'
KVM_DEVICE = '/dev/kvm'

#: Set to ``kvm`` or ``tcg`` to skip the probe.
ACCEL_ENV = 'FASTBOOT_ACCEL'

# Tags printed by the guest's /init; kept equal to those in guest.py but
# defined here too so that this module imports nothing from the builder.
CHECKSUM_TAG = 'FASTBOOT-CHECKSUM'
DONE_TAG = 'FASTBOOT-DONE'
ERROR_TAG = 'FASTBOOT-ERROR'
PROBE_TAG = 'FASTBOOT-PROBE-OK'

DEFAULT_TIMEOUT = 180
PROBE_TIMEOUT = 30

_accel_lock = threading.Lock()
_accel_cache = {}


@dataclasses.dataclass
class BootResult:
    """What one guest boot did."""

    name: str
    #: Seconds from the QEMU launch to the checksum line; None if none.
    boot_seconds: float
    #: The guest printed a checksum and FASTBOOT-DONE, and QEMU exited 0.
    ok: bool
    checksum: str
    #: The checksum equals the expected payload sha256.
    checksum_ok: bool
    console_log: str
    #: Seconds from the QEMU launch to its exit (or kill).
    wall_seconds: float = None
    accel: str = None
    returncode: int = None
    timed_out: bool = False
    #: One line on what went wrong, when not ``ok``.
    error: str = None


def parse_console_line(line):
    """Return ``(tag, value)`` for a guest status line, else None.

    The serial console may prefix a line with kernel noise or a carriage
    return, so the tag is searched for, not only matched at the start.
    """
    line = line.strip('\r\n\x00 ')
    for tag in (CHECKSUM_TAG, DONE_TAG, ERROR_TAG, PROBE_TAG):
        pos = line.find(tag)
        if pos < 0:
            continue
        value = line[pos + len(tag):].strip()
        if tag == CHECKSUM_TAG:
            value = value.split()[0].lower() if value else ''
            if len(value) != 64 or any(c not in '0123456789abcdef'
                                       for c in value):
                return None
        return tag, value
    return None


def _kvm_device_usable():
    return os.path.exists(KVM_DEVICE) and os.access(KVM_DEVICE,
                                                    os.R_OK | os.W_OK)


def probe_kvm(guest, timeout=PROBE_TIMEOUT):
    """True if ``guest``'s kernel reaches its /init under KVM."""
    if not _kvm_device_usable():
        return False
    argv = qemu_argv(guest, 'kvm-probe', None, 'kvm',
                     extra_cmdline='fastboot.probe=1')
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        LOG.info('KVM probe: no answer in %ss, using TCG', timeout)
        return False
    except OSError as e:
        LOG.info('KVM probe: cannot run %s (%s), using TCG', QEMU, e)
        return False
    out = proc.stdout.decode('utf-8', 'replace')
    works = proc.returncode == 0 and any(
        parse_console_line(line) == (PROBE_TAG, '')
        for line in out.splitlines())
    LOG.info('KVM probe: %s in %.1fs (exit %s)%s',
             'works' if works else 'fails', time.monotonic() - started,
             proc.returncode, '' if works else ': ' + out[-300:].strip())
    return works


def choose_accel(guest, probe=None, refresh=False):
    """Return ``'kvm'`` where it really runs ``guest``, else ``'tcg'``.

    The answer is cached for the process (a probe boot costs seconds).

    :param probe: ``probe(guest) -> bool``; defaults to :func:`probe_kvm`.
    :param refresh: probe again even if an answer is cached.
    """
    forced = os.environ.get(ACCEL_ENV)
    if forced in ('kvm', 'tcg'):
        return forced
    with _accel_lock:
        if refresh or 'accel' not in _accel_cache:
            probe = probe or probe_kvm
            _accel_cache['accel'] = 'kvm' if probe(guest) else 'tcg'
        return _accel_cache['accel']


def _escape_opt(value):
    """Escape a value inside a QEMU -opt list (commas are separators)."""
    return str(value).replace(',', ',,')


def qemu_argv(guest, name, disk, accel, memory_mib=256, disk_format='qcow2',
              extra_cmdline=''):
    """The QEMU command line booting ``guest`` as VM ``name`` on ``disk``.

    ``disk`` may be None (the KVM probe needs no disk).
    """
    argv = [QEMU, '-name', name, '-accel', accel, '-m', str(memory_mib),
            '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none',
            '-serial', 'stdio', '-no-reboot']
    if accel == 'kvm':
        argv += ['-cpu', 'host']
    if guest.boot_method == 'pvh':
        # qboot jumps straight to the PVH entry of the ELF kernel: about
        # twice as fast as SeaBIOS and the bzImage decompressor under TCG.
        argv += ['-bios', QBOOT_ROM]
    cmdline = '%s fastboot.vm=%s %s' % (guest.cmdline, name, extra_cmdline)
    argv += ['-kernel', guest.kernel, '-initrd', guest.initramfs,
             '-append', cmdline.strip()]
    if disk is not None:
        argv += ['-drive', 'file=%s,format=%s,if=virtio' % (
            _escape_opt(disk), disk_format)]
    return argv


class QemuVm:
    """One guest boot; a context manager that always reaps QEMU.

    ::

        with QemuVm(guest, 'vm1', '/path/vm1.qcow2', '/path/vm1.log') as vm:
            result = vm.wait()
    """

    def __init__(self, guest, name, disk, console_log,
                 timeout=DEFAULT_TIMEOUT, accel=None, memory_mib=256,
                 disk_format='qcow2', expected_checksum=None, prefix=()):
        self.guest = guest
        #: argv prefix, e.g. ``nsenter --net=...`` to boot in a host's
        #: network namespace.
        self.prefix = list(prefix)
        self.name = name
        self.disk = disk
        self.console_log = console_log
        self.timeout = timeout
        self.accel = accel
        self.memory_mib = memory_mib
        self.disk_format = disk_format
        self.expected = expected_checksum or guest.payload_sha256
        self.proc = None
        self._started = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def start(self):
        if self.accel is None:
            self.accel = choose_accel(self.guest)
        argv = self.prefix + qemu_argv(self.guest, self.name, self.disk,
                                       self.accel,
                                       memory_mib=self.memory_mib,
                                       disk_format=self.disk_format)
        LOG.debug('Starting VM %s: %s', self.name, argv)
        self._started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)

    def kill(self):
        """Kill QEMU if it still runs and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            LOG.warning('Killing QEMU of VM %s (pid %d)', self.name,
                        self.proc.pid)
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def wait(self):
        """Copy the console to the log until QEMU exits or the timeout.

        :returns: :class:`BootResult`
        """
        deadline = self._started + self.timeout
        fd = self.proc.stdout.fileno()
        seen = {}
        pending = b''
        timed_out = False
        with open(self.console_log, 'wb') as log:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _w, _x = select.select([fd], [], [], left)
                if not ready:
                    continue
                data = os.read(fd, 65536)
                if not data:
                    break
                now = time.monotonic()
                log.write(data)
                *lines, pending = (pending + data).split(b'\n')
                for raw in lines:
                    self._note(raw, now, seen)
            if pending:
                self._note(pending, time.monotonic(), seen)
        if timed_out:
            self.kill()
        else:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # stdout closed but QEMU lingers: not worth waiting for.
                self.kill()
        return self._result(seen, timed_out)

    def _note(self, raw, now, seen):
        parsed = parse_console_line(raw.decode('utf-8', 'replace'))
        if parsed and parsed[0] not in seen:
            seen[parsed[0]] = (parsed[1], now)
            LOG.debug('VM %s: %s %s after %.2fs', self.name, parsed[0],
                      parsed[1], now - self._started)

    def _result(self, seen, timed_out):
        rc = self.proc.returncode
        checksum, at = seen.get(CHECKSUM_TAG, (None, None))
        ok = (not timed_out and rc == 0 and checksum is not None and
              DONE_TAG in seen and ERROR_TAG not in seen)
        error = None
        if timed_out:
            error = 'timed out after %ss' % self.timeout
        elif ERROR_TAG in seen:
            error = 'guest error: %s' % seen[ERROR_TAG][0]
        elif checksum is None:
            error = 'no checksum on the console (QEMU exit %s)' % rc
        elif DONE_TAG not in seen:
            error = 'guest did not finish (QEMU exit %s)' % rc
        elif rc != 0:
            error = 'QEMU exited with %s' % rc
        checksum_ok = checksum is not None and checksum == self.expected
        if ok and not checksum_ok:
            error = 'checksum %s, expected %s' % (checksum, self.expected)
        return BootResult(
            name=self.name,
            boot_seconds=None if at is None else at - self._started,
            ok=ok, checksum=checksum, checksum_ok=checksum_ok,
            console_log=self.console_log,
            wall_seconds=time.monotonic() - self._started,
            accel=self.accel, returncode=rc, timed_out=timed_out,
            error=error)


def boot(guest, name, disk, console_log, timeout=DEFAULT_TIMEOUT,
         accel=None, memory_mib=256, disk_format='qcow2', prefix=()):
    """Boot ``guest`` as VM ``name`` on ``disk``; wait for it to finish.

    :returns: :class:`BootResult`; a failed boot is a result with ``ok``
        False, not an exception, so that a batch reports every VM.
    """
    vm = QemuVm(guest, name, disk, console_log, timeout=timeout,
                accel=accel, memory_mib=memory_mib, disk_format=disk_format,
                prefix=prefix)
    try:
        with vm:
            return vm.wait()
    except OSError as e:
        LOG.error('VM %s could not run: %s', name, e)
        return BootResult(name=name, boot_seconds=None, ok=False,
                          checksum=None, checksum_ok=False,
                          console_log=console_log, accel=vm.accel,
                          error=str(e))


def boot_many(guest, vms, timeout=DEFAULT_TIMEOUT, accel=None,
              memory_mib=256, max_workers=None):
    """Boot several VMs at once, one thread each.

    :param vms: list of ``(name, disk, console_log)`` or ``(name, disk,
        console_log, argv_prefix)``.
    :param max_workers: at most this many QEMUs at a time (all by default).
    :returns: list of :class:`BootResult`, in the order of ``vms``.
    """
    if not vms:
        return []
    # Probe once before the threads start, not once per thread.
    accel = accel or choose_accel(guest)
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers or len(vms),
            thread_name_prefix='fastboot-vm') as pool:
        futures = [pool.submit(boot, guest, *vm[:3], timeout=timeout,
                               accel=accel, memory_mib=memory_mib,
                               prefix=vm[3] if len(vm) > 3 else ())
                   for vm in vms]
        return [f.result() for f in futures]
