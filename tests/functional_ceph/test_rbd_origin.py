"""The qemu backend reading an RBD origin from a real userspace Ceph.

One Ceph (mon, mgr, BlueStore OSD on a sparse file; the bring-up of
``ministack/services/ceph.py``) for the whole class, in a private run
directory on 127.0.0.1 (monitor port FASTBOOT_CEPH_PORT_BASE + 789, base
default 23100). An RBD image holds known data; the engine caches it as a
fastboot image from what Cinder's RBD driver returns (connection_info),
and VM disks read it back through qemu-storage-daemon's librbd, no kernel
rbd or nbd. The pool's read counters (``rados df``) show what the origin
served.
"""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from fastboot_nova import exception
from fastboot_nova.storage import location
from fastboot_nova.storage import rbd
from ministack import layout as layout_mod
from ministack.services import ceph
from tests.functional import base

IMAGE = 'fb-origin'
CLUSTER = base.CLUSTER
DATA_CLUSTERS = 64
METADATA_ALLOWANCE = 256 * 1024


def _pool_read_bytes(layout):
    out = json.loads(subprocess.run(
        ['rados', '-c', str(ceph.conf_path(layout)), 'df', '-f', 'json'],
        check=True, capture_output=True, text=True, timeout=60).stdout)
    for pool in out['pools']:
        if pool['name'] == ceph.POOL:
            return pool['read_bytes']
    raise AssertionError('no pool %s in rados df' % ceph.POOL)


def settled_read_bytes(layout, at_least=0, timeout=120):
    """The pool's read bytes once the OSD's report caught up.

    The OSD reports its counters to the mgr every ~5 s, later on a loaded
    machine: wait until they reach ``at_least`` (what the test knows was
    read), then until two samples 6 s apart agree.
    """
    deadline = time.monotonic() + timeout
    last = _pool_read_bytes(layout)
    while time.monotonic() < deadline:
        time.sleep(6)
        now = _pool_read_bytes(layout)
        if now == last and now >= at_least:
            return now
        last = now
    raise AssertionError('pool read counters did not settle at %d or more '
                         'bytes in %d s (last %d)' % (at_least, timeout,
                                                      last))


class TestRbdOrigin(base.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ('ceph-mon', 'ceph-osd', 'ceph-mgr', 'rbd'):
            if shutil.which(tool) is None:
                raise AssertionError(
                    '%s is not installed; run tools/install-deps.sh ceph'
                    % tool)
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix='fbceph-',
                                                dir='/var/tmp'))
        cls.layout = layout_mod.Layout(
            run_dir=run_dir, cache_dir=run_dir / 'unused',
            port_base=int(os.environ.get('FASTBOOT_CEPH_PORT_BASE',
                                         '23100')))
        cls.layout.make_dirs()
        started = time.monotonic()
        try:
            ceph.bring_up(cls.layout)
        except BaseException:
            ceph.stop(cls.layout)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        cls.bring_up_seconds = time.monotonic() - started
        cls.conf = str(ceph.conf_path(cls.layout))
        cls.origin = os.path.join(run_dir, 'origin.raw')
        with open(cls.origin, 'wb') as f:
            f.truncate(base.IMAGE_SIZE)
            for i in range(DATA_CLUSTERS):
                f.write(bytes([i % 250 + 1]) * CLUSTER)
        cls.sha256 = base.sha256(cls.origin)
        subprocess.run(['rbd', '-c', cls.conf, 'import', cls.origin,
                        '%s/%s' % (ceph.POOL, IMAGE)], check=True,
                       capture_output=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        ceph.stop(cls.layout)
        left = [n for n in ceph.NAMES if ceph.proc.running(cls.layout, n)]
        shutil.rmtree(cls.layout.run_dir, ignore_errors=True)
        super().tearDownClass()
        assert not left, 'Ceph daemons left running: %s' % left

    def setUp(self):
        super().setUp()
        self.engine = self.useFixture(base.EngineFixture()).engine
        self.cinder_key = self._key_of('client.' + ceph.CINDER_USER)

    def _key_of(self, name):
        text = ceph.keyring_path(self.layout, name).read_text()
        return rbd._keyring_key(text)

    def connection_info(self, **data):
        """What Cinder 29's RBD driver returns for the volume."""
        info = {'name': '%s/%s' % (ceph.POOL, IMAGE),
                'hosts': ['127.0.0.1'],
                'ports': [str(self.layout.port('ceph_mon'))],
                'cluster_name': 'ceph', 'auth_enabled': True,
                'auth_username': ceph.CINDER_USER, 'secret_type': 'ceph',
                'secret_uuid': None, 'volume_id': IMAGE, 'discard': True,
                'keyring': None, 'access_mode': 'rw', 'encrypted': False}
        info.update(data)
        return {'driver_volume_type': 'rbd', 'data': info}

    def _read_back(self, vm, url):
        """A VM disk on the image; its whole content's sha256."""
        disk = self.engine.create(vm, 'img', url)
        out = os.path.join(self.layout.run_dir, vm + '.raw')
        subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw',
                        disk.path, out], check=True, timeout=300)
        try:
            return base.sha256(out)
        finally:
            os.unlink(out)

    def test_cinder_connection_info_reads_the_volume(self):
        url = rbd.location_from_connection_info(self.connection_info(),
                                                conf=self.conf)
        before = settled_read_bytes(self.layout)
        a = self.engine.create('vm-a', 'img', url)
        opened = settled_read_bytes(self.layout) - before
        # Ten clusters, one read twice, and 4 KiB of an eleventh: the
        # cache fetches whole clusters from the origin, once.
        base.qemu_io(a.path, 'read -P 1 0 64k',
                     'read -P %d 1M 64k' % (16 % 250 + 1),
                     'read 0 640k', 'read 128k 64k',
                     'read %d 4k' % (20 * CLUSTER))
        expected = 11 * CLUSTER
        fetched = settled_read_bytes(
            self.layout, at_least=before + opened + expected
        ) - before - opened
        print('rbd origin: opening read %d bytes, 11 clusters read '
              '%d bytes (%.2fx), bring-up %.1f s' % (
                  opened, fetched, fetched / expected,
                  self.bring_up_seconds))
        self.assertGreaterEqual(fetched, expected)
        # Beyond the clusters, librbd reads a little metadata (header,
        # object map: 68 KiB measured); nowhere near the 10 MiB of data.
        self.assertLess(fetched, expected + METADATA_ALLOWANCE)
        # A second VM reads everything: the right bytes.
        self.assertEqual(self.sha256, self._read_back('vm-b', url))
        image = self.engine.get_image('img')
        self.assertEqual(url, image.location)
        self.assertEqual(('vm-a', 'vm-b'), image.vms)

    def test_keyring_from_connection_info_through_a_secret(self):
        # A conf that names no keyring: the key can only come from the
        # connection_info (Cinder's rbd_keyring_conf), through a 0600 key
        # file and a QEMU secret object.
        conf = os.path.join(self.layout.run_dir, 'nokey.conf')
        with open(conf, 'w') as f:
            f.writelines(line for line in open(self.conf)
                         if not line.startswith('keyring'))
        keyring = '[client.cinder]\n\tkey = %s\n' % self.cinder_key
        key_dir = os.path.join(self.engine.state_path, rbd.KEY_DIR)
        url = rbd.location_from_connection_info(
            self.connection_info(keyring=keyring), conf=conf,
            key_dir=key_dir)
        self.assertNotIn(self.cinder_key, url)
        self.assertEqual(self.sha256, self._read_back('vm-k', url))
        # The key never reached the daemon's command line or the log.
        pid = self.engine.daemon.pid()
        self.assertIsNotNone(pid)
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            self.assertNotIn(self.cinder_key.encode(), f.read())
        for root, _dirs, files in os.walk(self.engine.state_path):
            for name in files:
                path = os.path.join(root, name)
                if path.endswith('.key') or not os.path.isfile(path):
                    continue
                with open(path, 'rb') as f:
                    self.assertNotIn(self.cinder_key.encode(), f.read(),
                                     path)

    def test_wrong_key_fails_cleanly(self):
        conf = os.path.join(self.layout.run_dir, 'nokey2.conf')
        with open(conf, 'w') as f:
            f.writelines(line for line in open(self.conf)
                         if not line.startswith('keyring'))
        wrong = self._key_of('client.admin')  # not client.cinder's
        url = rbd.location_from_connection_info(
            self.connection_info(keyring='[client.cinder]\nkey = %s\n'
                                 % wrong), conf=conf,
            key_dir=os.path.join(self.engine.state_path, rbd.KEY_DIR))
        e = self.assertRaises(exception.OriginUnavailable,
                              self.engine.add_image, 'bad', url)
        self.assertNotIn(wrong, str(e))
        self.assertEqual([], self.engine.list_images())
        self.assertEqual('rbd', location.parse(url).kind)
