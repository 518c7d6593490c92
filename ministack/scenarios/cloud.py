"""A running ministack as its users see it: the ``openstack`` and ``nova``
CLIs with a user's openrc, and the guest.

Shared by the scenario tests (tests/ministack), the stock comparison
(:mod:`ministack.scenarios.stock`) and ``python3 -m ministack demo``:
the steps a user takes with the real CLIs (volume holding the guest ->
snapshot -> multiattach origin volume -> fastboot image naming it), and
what they read back (the serial console each guest writes its root
disk's checksum to).
"""

import json
import math
import os
import subprocess
import time

from ministack import layout as layout_mod
from ministack.services import ceph
from ministack.services import cinder

#: The tag the demo guest prints with the checksum of its root disk.
CHECKSUM_TAG = 'FASTBOOT-CHECKSUM'
FLAVOR = 'ms.tiny'
COMMAND_LINE = 'console=ttyS0 fastboot.vm=ms panic=-1'


class ScenarioError(Exception):
    """A command or an expectation of a scenario failed (says which)."""


class Cloud:
    """The CLIs of the stack's venv with a user's openrc."""

    def __init__(self, stack, log=print):
        self.stack = stack
        self.layout = stack.layout
        self.log = log

    def env(self, user):
        env = dict(os.environ)
        env.update(self.stack.venv_env())
        env.update(self.stack.openrc(user))
        return env

    def run(self, tool, *args, user='demo', parse=True, timeout=600,
            check=True):
        argv = [str(self.layout.bin(tool)), *[str(a) for a in args]]
        if parse:
            argv += ['-f', 'json']
        result = subprocess.run(argv, capture_output=True, text=True,
                                env=self.env(user), timeout=timeout)
        if result.returncode:
            if not check:
                return None
            raise ScenarioError('%s %s failed: %s' % (
                tool, ' '.join(str(a) for a in args),
                result.stderr[-2000:]))
        if parse:
            return json.loads(result.stdout) if result.stdout else None
        return result.stdout

    def openstack(self, *args, **kwargs):
        return self.run('openstack', *args, **kwargs)

    def nova(self, *args, user='demo', timeout=600):
        """python-novaclient's ``nova`` (no ``-f json``: it prints tables)."""
        return self.run('nova', *args, user=user, parse=False,
                        timeout=timeout)

    def wait_status(self, kind, ident, want='available', timeout=600):
        deadline = time.monotonic() + timeout
        while True:
            status = self.openstack(kind, 'show', ident, '-c',
                                    'status')['status']
            if status == want:
                return
            if status == 'error':
                raise ScenarioError('%s %s went to error' % (kind, ident))
            if time.monotonic() > deadline:
                raise ScenarioError('%s %s is %s, not %s after %d s' % (
                    kind, ident, status, want, timeout))
            time.sleep(2)

    def wait_for(self, what, check, timeout=600, interval=2):
        """``check()``'s first true value, polled until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ScenarioError('timed out waiting for %s' % what)
            time.sleep(interval)

    def gone(self, kind, ident):
        return self.openstack(kind, 'show', ident, check=False,
                              user='admin') is None

    # -- the guest ----------------------------------------------------

    def ensure_guest(self):
        """The demo's guest, and the ids of its kernel and ramdisk images."""
        from fastboot_nova.demo import guest as guest_mod
        from fastboot_nova.demo import runner
        guest = guest_mod.build_guest(runner.DEFAULT_CACHE_DIR)
        ids = self.ensure_images(guest)
        return guest, ids['ms-kernel'], ids['ms-ramdisk']

    def size_gib(self, guest):
        return max(1, math.ceil(os.path.getsize(guest.image) / 1024 ** 3))

    def guest_volume(self, guest, name, volume_type=None, cleanup=None):
        """A volume holding the guest's disk (written with qemu-img).

        ``cleanup(callable, *args)``, if given, is called as soon as the
        volume exists, so a failed write does not leak it.
        """
        args = ['volume', 'create', '--size', self.size_gib(guest)]
        if volume_type:
            args += ['--type', volume_type]
        vol = self.openstack(*args, name)['id']
        if cleanup:
            cleanup(self.delete, 'volume', vol)
        self.wait_status('volume', vol)
        subprocess.run(
            ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
             guest.image, 'rbd:%s/volume-%s:conf=%s:id=admin' % (
                 ceph.POOL, vol, ceph.conf_path(self.layout))],
            check=True, capture_output=True, timeout=900)
        return vol

    def ensure_images(self, guest):
        """Kernel, ramdisk (public, admin) and the flavor; their ids."""
        kernel = os.path.join(os.path.dirname(guest.image),
                              _bzimage_name())
        images = {i['Name']: i['ID'] for i in self.openstack(
            'image', 'list', user='admin')}
        ids = {}
        for name, fmt, path in (('ms-kernel', 'aki', kernel),
                                ('ms-ramdisk', 'ari', guest.initramfs)):
            ids[name] = images.get(name) or self.openstack(
                'image', 'create', name, '--public', '--disk-format', fmt,
                '--container-format', fmt, '--file', path,
                user='admin')['id']
        flavors = [f['Name'] for f in self.openstack('flavor', 'list',
                                                     user='admin')]
        if FLAVOR not in flavors:
            self.openstack('flavor', 'create', FLAVOR, '--ram', '256',
                           '--disk', '1', '--vcpus', '1', '--public',
                           user='admin')
        return ids

    def snapshot_origin(self, guest, tag, workdir, cleanup):
        """Volume with the guest -> snapshot -> origin -> fastboot image.

        ``cleanup(callable, *args)`` is called for each thing made, in the
        order made (a test's addCleanup undoes them in reverse).
        Returns the ids: ``volume``, ``snapshot``, ``origin``, ``image``.
        """
        ids = self.ensure_images(guest)
        size_gib = self.size_gib(guest)
        out = {'volume': self.guest_volume(guest, 'ms-gsrc-' + tag,
                                           cleanup=cleanup)}
        out['snapshot'] = self.openstack(
            'volume', 'snapshot', 'create', '--volume', out['volume'],
            'ms-gsnap-' + tag)['id']
        cleanup(self.delete, 'volume snapshot', out['snapshot'])
        self.wait_status('volume snapshot', out['snapshot'])
        out['origin'] = self.openstack(
            'volume', 'create', '--snapshot', out['snapshot'], '--size',
            size_gib, '--type', cinder.MULTIATTACH_TYPE,
            '--property', 'fastboot_cacheable=true',
            'ms-gorigin-' + tag)['id']
        cleanup(self.delete, 'volume', out['origin'])
        self.wait_status('volume', out['origin'])
        stub = os.path.join(workdir, 'stub.raw')
        with open(stub, 'wb') as f:
            f.write(b'\0' * 512)
        out['image'] = self.openstack(
            'image', 'create', 'ms-fb-' + tag, '--disk-format', 'raw',
            '--container-format', 'bare', '--file', stub,
            '--property', 'fastboot_origin_volume=%s' % out['origin'],
            '--property', 'kernel_id=%s' % ids['ms-kernel'],
            '--property', 'ramdisk_id=%s' % ids['ms-ramdisk'],
            '--property', 'os_command_line=%s' % COMMAND_LINE)['id']
        cleanup(self.delete, 'image', out['image'])
        return out

    def delete(self, kind, ident):
        """Best effort (cleanups): the thing may be gone already."""
        self.openstack(*kind.split(), 'delete', ident, parse=False,
                       check=False)

    # -- servers ------------------------------------------------------

    def servers(self, prefix):
        """Servers named ``prefix-N``, with host (admin's long listing)."""
        return [s for s in self.openstack('server', 'list', '--long',
                                          '--all-projects', user='admin')
                if s['Name'].startswith(prefix + '-')]

    def console_log(self, host, server_id):
        """The serial console file libvirt wrote for the server.

        Read from the compute's instances directory: the guest powers off
        once it has printed its checksum, and Nova's console API answers
        only while the domain runs.
        """
        path = self.instance_dir(host, server_id) / 'console.log'
        try:
            return path.read_text(errors='replace')
        except OSError:
            return ''

    def instance_dir(self, host, server_id):
        return (self.layout.data('compute-' + host) / 'instances'
                / server_id)

    def checksum(self, host, server_id):
        """The checksum the guest printed, or None (not yet).

        Read as the standalone demo reads its consoles
        (``fastboot_nova.demo.vm.parse_console_line``): kernel messages
        on the serial console can cut into the guest's line, and only a
        whole 64-digit hex value counts.
        """
        from fastboot_nova.demo import vm as vm_mod
        for line in self.console_log(host, server_id).splitlines():
            parsed = vm_mod.parse_console_line(line)
            if parsed and parsed[0] == CHECKSUM_TAG:
                return parsed[1]
        return None

    def checksum_lines(self, host, server_id):
        """The console lines that carry the checksum tag (for errors)."""
        return [line for line in
                self.console_log(host, server_id).splitlines()
                if CHECKSUM_TAG in line]

    def wait_checksums(self, servers, started, timeout=900):
        """{server id: (seconds from ``started``, checksum or None)}.

        Polls each console until it shows a checksum, or the server goes
        to ERROR, or ``timeout``; the seconds are when it was first seen.
        """
        out = {}
        deadline = time.monotonic() + timeout
        while len(out) < len(servers) and time.monotonic() < deadline:
            for server in servers:
                sid = server['ID']
                if sid in out:
                    continue
                value = self.checksum(server['Host'], sid)
                if value:
                    out[sid] = (time.monotonic() - started, value)
            time.sleep(0.5)
        for server in servers:
            out.setdefault(server['ID'], (time.monotonic() - started, None))
        return out

    def check_consoles(self, servers, sha256, timeout=600):
        """Each server's console shows ``sha256`` (ScenarioError if not)."""
        for server in servers:
            host, sid = server['Host'], server['ID']
            value = self.wait_for(
                'checksum on the console of %s' % sid,
                lambda h=host, i=sid: self.checksum(h, i), timeout=timeout)
            if value != sha256:
                raise ScenarioError(
                    'server %s on %s printed a wrong checksum: %s, not %s '
                    '(console: %r)' % (sid, host, value, sha256,
                                       self.checksum_lines(host, sid)))

    def wait_servers(self, prefix, count, status=('ACTIVE', 'SHUTOFF'),
                     timeout=900):
        """The ``count`` servers of ``prefix`` once all have a host and
        one of ``status`` (ERROR raises with the fault).
        """
        deadline = time.monotonic() + timeout
        while True:
            servers = self.servers(prefix)
            errors = [s for s in servers if s['Status'] == 'ERROR']
            if errors:
                raise ScenarioError('servers in ERROR: %s' % ', '.join(
                    '%s: %s' % (s['Name'], self.openstack(
                        'server', 'show', s['ID'], user='admin').get(
                            'fault')) for s in errors))
            if len(servers) == count and all(
                    s['Status'] in status and s['Host'] for s in servers):
                return servers
            if time.monotonic() > deadline:
                raise ScenarioError('servers of %s after %d s: %s' % (
                    prefix, timeout, [(s['Name'], s['Status'])
                                      for s in servers]))
            time.sleep(2)

    def domains(self):
        """{compute host: libvirt domain names}, from each libvirtd."""
        out = {}
        for host in layout_mod.COMPUTES:
            uri = 'qemu:///system?socket=%s' % (
                self.layout.data('libvirt-' + host) / 'run' / 'libvirt-sock')
            out[host] = subprocess.run(
                ['virsh', '-c', uri, 'list', '--all', '--name'],
                capture_output=True, text=True, check=True,
                timeout=120).stdout.split()
        return out

    def caches(self, host):
        """``fastboot image list`` of a compute's state directory."""
        state = self.layout.data('compute-' + host) / 'fb'
        out = subprocess.run(
            [str(self.layout.bin('fastboot')), '--state-path', str(state),
             'image', 'list', '-f', 'json'], capture_output=True, text=True,
            env=dict(os.environ, **self.stack.venv_env()), timeout=120)
        if out.returncode:
            raise ScenarioError('fastboot image list on %s: %s' % (
                host, out.stderr[-1000:]))
        return json.loads(out.stdout)


def _bzimage_name():
    # SeaBIOS boots the bzImage; the PVH vmlinux needs qboot.
    from fastboot_nova.demo import guest as guest_mod
    return guest_mod.KERNEL_BZIMAGE
