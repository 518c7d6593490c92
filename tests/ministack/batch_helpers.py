"""What the boot-batch scenarios share: a bootable volume snapshot of the
tiny guest, the batch CLI, and the README's by-hand recipe.

The snapshot is made the way a user would make one of a bootable volume:
the guest written into a Cinder volume, the volume marked bootable with
the image properties that say how to boot it (``kernel_id``,
``ramdisk_id``, ``os_command_line``: the tiny guest boots a kernel
directly), then snapshotted; Cinder copies those properties to the
snapshot and to every volume made from it, and the runner copies them to
the fastboot image.
"""

import math
import os
import subprocess
import time
import uuid

from ministack.services import ceph
from ministack.services import cinder
from tests.ministack import test_boot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
#: Where JSON figures and screenshots of the ministack scenarios go.
OUTPUT = os.environ.get('MINISTACK_OUTPUT',
                        os.path.join(ROOT, '.ministack-output'))
COMMAND_LINE = 'console=ttyS0 fastboot.vm=ms panic=-1'


class BatchScenarioMixin:
    """For a :class:`tests.ministack.base.MinistackTestCase`."""

    def quiet(self, *args, user='demo'):
        """An openstack command whose failure does not matter (cleanup)."""
        subprocess.run(
            [str(self.layout.bin('openstack')), *args],
            env=dict(os.environ, **self.stack.venv_env(),
                     **self.stack.openrc(user)),
            capture_output=True, timeout=600)

    def wait_status(self, kind, ident, want='available', timeout=900):
        def check():
            status = self.openstack(kind, 'show', ident, '-c', 'status')[
                'status']
            if status == 'error':
                self.fail('%s %s went to error' % (kind, ident))
            return status == want
        self.wait_for('%s %s %s' % (kind, ident, want), check,
                      timeout=timeout)

    def bootable_snapshot(self):
        """(guest, snapshot id, {'ms-kernel': id, 'ms-ramdisk': id})."""
        guest = test_boot.TestImageBoot._ensure_images(self)
        images = {i['Name']: i['ID'] for i in self.openstack(
            'image', 'list', user='admin')}
        tag = uuid.uuid4().hex[:8]
        size_gib = max(1, math.ceil(os.path.getsize(guest.image) / 1024 ** 3))
        src = self.openstack('volume', 'create', '--size', str(size_gib),
                             'ms-bsrc-' + tag)['id']
        self.addCleanup(self.quiet, 'volume', 'delete', src)
        self.wait_status('volume', src)
        subprocess.run(
            ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
             guest.image, 'rbd:%s/volume-%s:conf=%s:id=admin' % (
                 ceph.POOL, src, ceph.conf_path(self.layout))],
            check=True, capture_output=True, timeout=600)
        self.openstack(
            'volume', 'set', '--bootable',
            '--image-property', 'kernel_id=%s' % images['ms-kernel'],
            '--image-property', 'ramdisk_id=%s' % images['ms-ramdisk'],
            '--image-property', 'os_command_line=%s' % COMMAND_LINE,
            src, parse=False)
        snap = self.openstack('volume', 'snapshot', 'create', '--volume',
                              src, 'ms-bsnap-' + tag)['id']
        self.addCleanup(self.quiet, 'volume', 'snapshot', 'delete', snap)
        self.wait_status('volume snapshot', snap)
        return guest, snap, images

    def batch(self, *args, **kwargs):
        return self.openstack('fastboot', 'batch', *args, **kwargs)

    def batch_servers(self, batch_id):
        """Nova's view (admin) of the batch's servers: {id: row}."""
        ids = {s['id'] for s in self.batch('show', batch_id)[
            'servers'] if s.get('id')}
        return {s['ID']: s for s in self.openstack(
            'server', 'list', '--long', '--all-projects', user='admin')
            if s['ID'] in ids}

    def assert_consoles(self, guest, servers):
        for sid, server in servers.items():
            host = server['Host']
            self.wait_for('checksum on the console of %s' % sid,
                          lambda h=host, i=sid: 'FASTBOOT-CHECKSUM' in
                          self.console_log(h, i), timeout=600)
            self.assertIn('FASTBOOT-CHECKSUM %s' % guest.payload_sha256,
                          self.console_log(host, sid))

    def by_hand(self, snap, images, count, tag):
        """The README's recipe for ``count`` servers of ``snap``.

        Returns (seconds from the first command to all ACTIVE, server ids);
        everything it makes is cleaned up after the test.
        """
        start = time.monotonic()
        snapshot = self.openstack('volume', 'snapshot', 'show', snap)
        size = snapshot['size']
        origin = self.openstack(
            'volume', 'create', '--snapshot', snap, '--size', str(size),
            '--type', cinder.MULTIATTACH_TYPE,
            '--property', 'fastboot_cacheable=true',
            'ms-hand-origin-' + tag)['id']
        self.addCleanup(self.quiet, 'volume', 'delete', origin)
        self.wait_status('volume', origin)
        stub = os.path.join(self.tmp, 'stub-%s.raw' % tag)
        with open(stub, 'wb') as f:
            f.write(b'\0' * 512)
        image = self.openstack(
            'image', 'create', 'ms-hand-' + tag, '--disk-format', 'raw',
            '--container-format', 'bare', '--file', stub,
            '--property', 'fastboot_origin_volume=%s' % origin,
            '--property', 'kernel_id=%s' % images['ms-kernel'],
            '--property', 'ramdisk_id=%s' % images['ms-ramdisk'],
            '--property', 'os_command_line=%s' % COMMAND_LINE)['id']
        self.addCleanup(self.quiet, 'image', 'delete', image)
        name = 'ms-hand%s' % tag
        self.openstack('server', 'create', '--image', image,
                       '--flavor', 'ms.tiny', '--nic', 'none',
                       '--min', str(count), '--max', str(count), '--wait',
                       name, timeout=1800)
        elapsed = time.monotonic() - start
        servers = {s['ID']: s for s in self.openstack(
            'server', 'list', '--long', '--all-projects', user='admin')
            if s['Name'].startswith(name + '-')}
        return elapsed, servers


def load_average():
    with open('/proc/loadavg') as f:
        return [float(v) for v in f.read().split()[:3]]
