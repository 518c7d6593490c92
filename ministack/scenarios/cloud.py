"""The openstack CLI as a user of a running ministack, and its guest."""

import json
import math
import os
import subprocess
import time

from ministack import layout as layout_mod
from ministack.services import ceph

GUEST_CMDLINE = 'console=ttyS0 fastboot.vm=ms panic=-1'


class ScenarioError(Exception):
    """A scenario's expectation did not hold (the message says which)."""


class Cloud:
    """``openstack`` as the demo (or admin) user of ``stack``."""

    def __init__(self, stack, log=print):
        self.stack = stack
        self.layout = stack.layout
        self.log = log

    def env(self, user):
        env = dict(os.environ)
        env.update(self.stack.venv_env())
        env.update(self.stack.openrc(user))
        return env

    def openstack(self, *args, user='demo', parse=True, timeout=600,
                  check=True):
        argv = [str(self.layout.bin('openstack')), *args]
        if parse:
            argv += ['-f', 'json']
        result = subprocess.run(argv, capture_output=True, text=True,
                                env=self.env(user), timeout=timeout)
        if result.returncode:
            if not check:
                return None
            raise ScenarioError('openstack %s failed: %s' % (
                ' '.join(args), result.stderr[-2000:]))
        return json.loads(result.stdout) if parse and result.stdout else None

    def wait_for(self, what, check, timeout=600, interval=2):
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ScenarioError('timed out waiting for %s' % what)
            time.sleep(interval)

    def wait_status(self, kind, ident, want='available', timeout=600):
        def check():
            status = self.openstack(kind, 'show', ident, '-c',
                                    'status')['status']
            if status == 'error':
                raise ScenarioError('%s %s went to error' % (kind, ident))
            return status == want
        self.wait_for('%s %s %s' % (kind, ident, want), check, timeout)

    def gone(self, kind, ident):
        return self.openstack(kind, 'show', ident, check=False,
                              user='admin') is None

    def console_log(self, host, server_id):
        """The serial console file libvirt wrote (the guest powers off)."""
        path = (self.layout.data('compute-' + host) / 'instances'
                / server_id / 'console.log')
        try:
            return path.read_text(errors='replace')
        except OSError:
            return ''

    def servers(self, prefix):
        return [s for s in self.openstack('server', 'list', '--long',
                                          '--all-projects', user='admin')
                if s['Name'].startswith(prefix + '-')]

    def check_consoles(self, servers, sha256, timeout=600):
        for server in servers:
            host, sid = server['Host'], server['ID']
            self.wait_for('checksum on the console of %s' % sid,
                          lambda h=host, i=sid: 'FASTBOOT-CHECKSUM' in
                          self.console_log(h, i), timeout=timeout)
            if 'FASTBOOT-CHECKSUM %s' % sha256 not in self.console_log(
                    host, sid):
                raise ScenarioError('server %s printed a wrong checksum'
                                    % sid)

    def libvirt_domains(self):
        out = {}
        for host in layout_mod.COMPUTES:
            uri = 'qemu:///system?socket=%s' % (
                self.layout.data('libvirt-' + host) / 'run' / 'libvirt-sock')
            out[host] = subprocess.run(
                ['virsh', '-c', uri, 'list', '--all', '--name'],
                capture_output=True, text=True, check=True).stdout.split()
        return out

    def ensure_guest(self):
        """The demo's guest, its kernel/ramdisk images and ``ms.tiny``."""
        from fastboot_nova.demo import guest as guest_mod
        from fastboot_nova.demo import runner
        guest = guest_mod.build_guest(runner.DEFAULT_CACHE_DIR)
        kernel = os.path.join(os.path.dirname(guest.image),
                              guest_mod.KERNEL_BZIMAGE)
        images = {i['Name']: i['ID'] for i in self.openstack(
            'image', 'list', user='admin')}
        for name, fmt, path in (('ms-kernel', 'aki', kernel),
                                ('ms-ramdisk', 'ari', guest.initramfs)):
            if name not in images:
                images[name] = self.openstack(
                    'image', 'create', name, '--public', '--disk-format',
                    fmt, '--container-format', fmt, '--file', path,
                    user='admin')['id']
        flavors = [f['Name'] for f in self.openstack('flavor', 'list',
                                                     user='admin')]
        if 'ms.tiny' not in flavors:
            self.openstack('flavor', 'create', 'ms.tiny', '--ram', '256',
                           '--disk', '1', '--vcpus', '1', '--public',
                           user='admin')
        return guest, images['ms-kernel'], images['ms-ramdisk']

    def size_gib(self, guest):
        return max(1, math.ceil(os.path.getsize(guest.image) / 1024 ** 3))

    def guest_volume(self, guest, name, volume_type=None):
        """A volume holding the guest's disk (written with qemu-img)."""
        args = ['volume', 'create', '--size', str(self.size_gib(guest))]
        if volume_type:
            args += ['--type', volume_type]
        vol = self.openstack(*args, name)['id']
        self.wait_status('volume', vol)
        subprocess.run(
            ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
             guest.image, 'rbd:%s/volume-%s:conf=%s:id=admin' % (
                 ceph.POOL, vol, ceph.conf_path(self.layout))],
            check=True, capture_output=True, timeout=900)
        return vol
