"""The Nova life cycle on the REAL qemu engine, through Nova's API.

In-process Nova (API, conductor, scheduler, placement, computes) runs
FastBootDriver over nova's fake libvirt, as in the other functional-nova
tests, but every compute's engine is a real QemuEngine: a real
qemu-storage-daemon holding the host cache, real qcow2 overlays on disk.
What the guest would write is written through the server's overlay with
qemu-io (libvirt is fake: no guest runs), and read back the same way,
through overlay, cache node and NBD export.

Covered here: the guest's writes survive stop/start, a hard reboot, and a
nova-compute restart with the cache daemon killed; delete leaves no
overlay, cache or export; a host-local spawn failure reschedules to the
second compute and leaves nothing on the first; each refusal (cold
migration, createImage, shelve, rescue from the fastboot image, an
encrypted origin) through the API, with the server's data untouched.
Live migration is refused by the source's pre-check, which in-process
Nova does not reach here (its conductor does not find the second compute
node for the live-migration checks): tests/unit/virt/test_driver.py
checks that refusal.
os-brick is the one fake: the origin "connects" as a local file.
"""

import os
import signal
import subprocess
import time

import fixtures
from nova.virt.libvirt import driver as libvirt_driver

from fastboot_nova.virt import driver
from tests.functional import base as engine_base
from tests.functional_nova import base
from tests.functional_nova import test_fastboot_qemu

IMAGE = 'cinder-' + base.ORIGIN_VOLUME
#: What the origin holds at 0, and what the guest writes at 1 MiB.
ORIGIN_BYTE, GUEST_BYTE = 0x2a, 0x5a


class RealEnginePathsBase(test_fastboot_qemu.QemuEngineBase):
    """Real engines, one per compute.

    A restarted nova-compute gets a new engine object over the same state
    path, as a restarted process would.
    """

    def setUp(self):
        self.state_paths = {}
        super().setUp()
        with open(self.origin, 'r+b') as f:
            f.write(bytes([ORIGIN_BYTE]) * 65536)

    def _get_engine(self, conf, state_path=None, execute=None):
        host = conf.host
        if host in self.engines and self.restarts.get(host):
            self.restarts[host] = 0
            self.engines[host] = self.real_engine(self.state_paths[host])
            return self.engines[host]
        return super()._get_engine(conf, state_path, execute)

    def make_engine(self, conf, host):
        engine = super().make_engine(conf, host)
        self.state_paths[host] = engine.state_path
        return engine

    def real_engine(self, state_path):
        from fastboot_nova.storage.qemu import engine as qemu_engine
        engine = qemu_engine.QemuEngine(engine_base.make_conf(),
                                        state_path=state_path)
        self.addCleanup(engine.shutdown)
        return engine

    # -- the guest's view ----------------------------------------------

    def overlay(self, server):
        (disk,) = self.guest_disks(server)
        self.assertEqual('qcow2', disk.find('driver').get('type'))
        return disk.find('source').get('file')

    def guest_write(self, server):
        path = self.overlay(server)
        engine_base.qemu_io(path, 'write -P 0x%x 1M 64k' % GUEST_BYTE)
        return path

    def assert_guest_data(self, server, path):
        """The server still has ``path``, with its data.

        The origin's bytes and the guest's writes, read through overlay,
        cache and export.
        """
        self.assertEqual(path, self.overlay(server))
        engine_base.qemu_io(path, 'read -P 0x%x 0 64k' % ORIGIN_BYTE,
                            read_only=True)
        engine_base.qemu_io(path, 'read -P 0x%x 1M 64k' % GUEST_BYTE,
                            read_only=True)
        # The origin never sees the guest's writes.
        with open(self.origin, 'rb') as f:
            f.seek(1 << 20)
            self.assertEqual(bytes(65536), f.read(65536))

    def assert_nothing_on(self, host):
        engine = self.engines[host]
        self.assertEqual([], engine.list())
        self.assertEqual([], engine.list_images())
        self.assertEqual([], os.listdir(engine.vm_dir))
        self.assertEqual([], os.listdir(engine.cache_dir))
        self.assert_no_export(engine)

    def assert_no_export(self, engine):
        """No NBD export of the cache: a client is refused."""
        url = 'nbd+unix:///%s?socket=%s' % (IMAGE, engine.nbd_socket)
        proc = subprocess.run(['qemu-img', 'info', '-U', url],
                              capture_output=True, text=True)
        self.assertNotEqual(0, proc.returncode, proc.stdout)

    def kill_daemon(self, engine):
        pid = engine.daemon.pid()
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while engine.daemon.pid() is not None:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)


class TestGuestWritesSurvive(RealEnginePathsBase):

    def test_stop_start_hard_reboot_and_compute_restart(self):
        self.start_compute('compute1')
        (server,), _ = self.boot_from_origin(1)
        path = self.guest_write(server)
        self.assert_guest_data(server, path)

        server = self._stop_server(server)
        server = self._start_server(server)
        self.assert_guest_data(server, path)

        server = self._reboot_server(server, hard=True)
        self.assert_guest_data(server, path)

        # nova-compute restarts after the cache daemon died (a host crash
        # takes both): the new engine finds its state file.
        self.kill_daemon(self.engines['compute1'])
        self.restart_compute('compute1')
        server = self._reboot_server(server, hard=True)
        self.assert_guest_data(server, path)
        self.assertEqual('ACTIVE', server['status'])

        self.delete_all([server])
        self._wait_until_deleted(server)
        self.assert_nothing_on('compute1')


class TestFastBootImagePaths(RealEnginePathsBase):
    """A fastboot-image server: reschedule and the refusals."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._create_image',
            base.REAL_CREATE_IMAGE))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._try_fetch_image_cache'))
        self.image_id = self.make_fastboot_image(base.ORIGIN_VOLUME)

    def test_reschedule_to_the_second_compute(self):
        self.start_compute('compute1')
        self.start_compute('compute2')
        real = libvirt_driver.LibvirtDriver._create_guest_with_network
        failed = []

        def fail_once(drv, context, xml, instance, *args, **kwargs):
            # After overlay, cache and attachment were made for real.
            if not failed:
                failed.append(instance.host)
                raise Exception('host-local failure')
            return real(drv, context, xml, instance, *args, **kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver.'
            '_create_guest_with_network', fail_once))

        body = self._build_server(name='fbr', image_uuid=self.image_id,
                                  networks='none')
        server = self.api.post_server({'server': body})
        self.wait_for(lambda: self.api.get_server(server['id'])['status']
                      in ('ACTIVE', 'ERROR'), timeout=300)
        server = self.api.get_server(server['id'])
        self.assertEqual('ACTIVE', server['status'], server.get('fault'))
        (first,) = failed
        second = server['OS-EXT-SRV-ATTR:host']
        self.assertNotEqual(first, second)
        self.assertEqual({'compute1', 'compute2'}, {first, second})
        # The first host made a cache and an overlay; nothing is left.
        self.assert_nothing_on(first)
        self.assertIn(first, [h for h, _u in self.connects])
        self.assertIn(first, [h for h, _u in self.disconnects])
        # One attachment: the second host's (the first host's was
        # deleted). Its connector's host name is not checked: in-process
        # computes share one [DEFAULT] host option.
        self.assertEqual(1, len(self.attachments()))
        path = self.guest_write(server)
        self.assert_guest_data(server, path)
        self.delete_all([server])
        self._wait_until_deleted(server)
        self.assert_nothing_on(second)
        self.assertEqual({}, self.attachments())

    def boot_one(self):
        (server,), _ = self.boot_image(self.image_id, 1)
        return server, self.guest_write(server)

    def refusals(self, name):
        """What ``FastBootDriver.<name>`` raises from now on, in a list.

        createImage and shelve run the driver's snapshot in a task after
        the RPC call returned, and no fault is recorded for it: the
        refusal is read where the driver raises it.
        """
        raised = []
        real = getattr(driver.FastBootDriver, name)

        def spy(drv, *args, **kwargs):
            try:
                return real(drv, *args, **kwargs)
            except Exception as e:
                raised.append(e)
                raise
        self.useFixture(fixtures.MonkeyPatch(
            'fastboot_nova.virt.driver.FastBootDriver.' + name, spy))
        return raised

    def wait_for_refusal(self, raised, count, text):
        self.wait_for(lambda: len(raised) >= count, timeout=300)
        self.assertIn(text, str(raised[count - 1]))

    def assert_kept(self, server, path, host='compute1'):
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
        self.assert_guest_data(server, path)
        self.assertEqual(['nova-' + server['id']],
                         [d.name for d in self.engines[host].list()])
        self.assertEqual(1, len(self.attachments()))
        return server

    def test_cold_migration_refused(self):
        self.start_compute('compute1')
        self.start_compute('compute2')
        server, path = self.boot_one()
        host = server['OS-EXT-SRV-ATTR:host']
        self.api.post_server_action(server['id'], {'migrate': None})
        self._wait_for_action_fail_completion(
            server, 'migrate', 'compute_resize_instance')
        self.assertIn('Resize or cold migration is not supported for a '
                      'fastboot server', self.faults(server)[0])
        server = self.assert_kept(server, path, host)
        self.delete_all([server])
        self._wait_until_deleted(server)
        self.assert_nothing_on(host)

    def check_refused(self, method, action, text):
        """``action`` reaches FastBootDriver.<method>, which refuses it.

        The server keeps its overlay, data and attachment.
        """
        self.start_compute('compute1')
        server, path = self.boot_one()
        raised = self.refusals(method)
        self.api.post_server_action(server['id'], action)
        self.wait_for_refusal(raised, 1, text)
        self.assert_guest_data(server, path)
        self.assertEqual(['nova-' + server['id']],
                         [d.name for d in self.engines['compute1'].list()])
        self.assertEqual(1, len(self.attachments()))

    def test_create_image_refused(self):
        self.check_refused('snapshot', {'createImage': {'name': 'snap'}},
                           'Snapshot is not supported for a fastboot '
                           'server')

    def test_shelve_refused(self):
        self.check_refused('snapshot', {'shelve': {}},
                           'Snapshot is not supported for a fastboot '
                           'server')

    def test_rescue_from_the_fastboot_image_refused(self):
        self.check_refused('rescue', {'rescue': {
            'rescue_image_ref': self.image_id}},
            'must be rescued from another image')

    def test_encrypted_origin_refused(self):
        self.start_compute('compute1')
        self.volume_fields[base.ORIGIN_VOLUME]['encrypted'] = True
        (server,), _ = self.boot_image(self.image_id, 1, expected='ERROR')
        server = self.api.get_server(server['id'])
        self.assertIn('it is encrypted', server['fault']['message'])
        self.assertEqual({}, self.attachments())
        self.assertEqual([], self.connects)
        engine = self.engines.get('compute1')
        if engine is not None:
            self.assert_nothing_on('compute1')
