"""A fastboot image from a Cinder volume on Ceph, with the real CLIs.

Volume -> snapshot -> origin volume of type ``fastboot-multiattach`` (an
RBD clone) -> an attachment's connection_info (``cinder
attachment-create --connect``, what Nova gets for a server) -> ``fastboot
image add --connection-info`` on the qemu backend, which reads the RBD
image through librbd -> a VM disk on it holds the bytes written into the
first volume.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid

from ministack.services import ceph
from ministack.services import cinder
from tests.ministack import base

SIZE = 1024 ** 3
CLUSTER = 64 * 1024


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


class TestVolumeOrigin(base.MinistackTestCase):

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix='fbms-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def run_tool(self, *argv, env=None, timeout=600):
        full_env = dict(os.environ)
        full_env.update(self.stack.venv_env())
        full_env.update(env or {})
        result = subprocess.run([str(a) for a in argv], capture_output=True,
                                text=True, env=full_env, timeout=timeout)
        if result.returncode:
            self.fail('%s failed (%d): %s %s' % (
                ' '.join(str(a) for a in argv[:3]), result.returncode,
                result.stdout[-1000:], result.stderr[-2000:]))
        return result.stdout

    def wait_status(self, kind, ident, want='available'):
        def check():
            status = self.openstack(kind, 'show', ident, '-c', 'status')[
                'status']
            if status == 'error':
                self.fail('%s %s went to error' % (kind, ident))
            return status == want
        self.wait_for('%s %s %s' % (kind, ident, want), check,
                      timeout=300)

    def _delete(self, kind, ident):
        subprocess.run(
            [str(self.layout.bin('openstack')), kind, 'delete', ident],
            env=dict(os.environ, **self.stack.venv_env(),
                     **self.stack.openrc('demo')),
            capture_output=True, timeout=300)

    def _write_data(self, volume_id):
        """Known bytes into the volume, as an operator would (qemu-img)."""
        data = os.path.join(self.tmp, 'data.raw')
        with open(data, 'wb') as f:
            f.truncate(SIZE)
            for i in range(160):  # 10 MiB of patterned clusters
                f.write(bytes([i % 250 + 1]) * CLUSTER)
        target = 'rbd:%s/volume-%s:conf=%s:id=admin' % (
            ceph.POOL, volume_id, ceph.conf_path(self.layout))
        self.run_tool('qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
                      data, target)
        return _sha256(data)

    def test_snapshot_origin_volume_becomes_a_fastboot_image(self):
        src = self.openstack('volume', 'create', '--size', '1',
                             'ms-src-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume', src)
        self.wait_status('volume', src)
        digest = self._write_data(src)
        snap = self.openstack('volume', 'snapshot', 'create', '--volume',
                              src, 'ms-snap-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume snapshot', snap)
        self.wait_status('volume snapshot', snap)
        origin = self.openstack(
            'volume', 'create', '--snapshot', snap, '--size', '1',
            '--type', cinder.MULTIATTACH_TYPE,
            '--property', 'fastboot_cacheable=true',
            'ms-origin-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume', origin)
        self.wait_status('volume', origin)
        shown = self.openstack('volume', 'show', origin)
        self.assertTrue(shown['multiattach'], shown)

        # What Nova gets for a server on ms-c1: cinderclient, as the demo
        # user, with the connector of that host.
        env = self.stack.openrc('demo')
        out = self.run_tool(
            self.layout.bin('cinder'), '--os-volume-api-version', '3.54',
            'attachment-create', '--connect', 'True', '--initiator',
            'iqn.1993-08.org.debian:01:ms-c1', '--ip', '127.0.0.1',
            '--host', 'ms-c1', '--platform', 'x86_64', '--ostype',
            'linux2', '--mode', 'ro', origin, str(uuid.uuid4()), env=env)
        attachment = None
        for line in out.splitlines():
            if line.strip().startswith('| id '):
                attachment = line.split('|')[2].strip()
        self.assertIsNotNone(attachment, out)
        self.addCleanup(
            subprocess.run,
            [str(self.layout.bin('cinder')), '--os-volume-api-version',
             '3.54', 'attachment-delete', attachment],
            env=dict(os.environ, **self.stack.venv_env(), **env),
            capture_output=True, timeout=300)
        info = self.openstack('--os-volume-api-version', '3.54', 'volume',
                              'attachment', 'show', attachment)
        # openstackclient shows connection_info as "Properties".
        connection_info = info['Properties']
        self.assertEqual('rbd', connection_info['driver_volume_type'])
        self.assertEqual('%s/volume-%s' % (ceph.POOL, origin),
                         connection_info['name'])
        ci_file = os.path.join(self.tmp, 'ci.json')
        with open(ci_file, 'w') as f:
            json.dump(connection_info, f)

        state = os.path.join(self.tmp, 'fb')
        os.mkdir(state)
        conf = os.path.join(self.tmp, 'fastboot.conf')
        with open(conf, 'w') as f:
            f.write('[fastboot]\nbackend = qemu\n[fastboot_qemu]\n'
                    'rbd_ceph_conf = %s\n' % ceph.conf_path(self.layout))
        fastboot = [self.layout.bin('fastboot'), '--config-file', conf,
                    '--state-path', state]
        self.addCleanup(subprocess.run, fastboot + ['shutdown'],
                        capture_output=True, timeout=120)
        image = 'cinder-' + origin
        added = json.loads(self.run_tool(*fastboot, 'image', 'add', image,
                                         '--connection-info', ci_file,
                                         '-f', 'json'))
        self.assertTrue(added['location'].startswith(
            'rbd://%s/volume-%s?' % (ceph.POOL, origin)), added)
        self.assertEqual(SIZE, added['virtual_size'])
        disk = json.loads(self.run_tool(*fastboot, 'create', 'vm1', image,
                                        added['location'], '-f', 'json'))
        out = os.path.join(self.tmp, 'vm1.raw')
        self.run_tool('qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw',
                      disk['path'], out)
        self.assertEqual(digest, _sha256(out))
        self.run_tool(*fastboot, 'destroy', 'vm1')
        self.run_tool(*fastboot, 'image', 'remove', image)
