"""In-process Nova with FastBootDriver over nova's fake libvirt.

API, conductor, scheduler, placement and the computes run in this process
(nova.tests.functional); libvirt is nova's fakelibvirt; Cinder is nova's
CinderFixture, whose multiattach volume plays the shared origin.
"""

import os
import sys
import threading
import time
from xml.etree import ElementTree

import fixtures
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova.tests.fixtures import cinder as cinder_fixture
from nova.tests.functional.libvirt import base as libvirt_base
from nova.virt.libvirt import driver as libvirt_driver

import fastboot_nova.conf  # noqa: F401 - registers [fastboot]
from tests.unit import fakes

DRIVER = 'fastboot.driver.FastBootDriver'
ORIGIN_VOLUME = cinder_fixture.CinderFixture.MULTIATTACH_VOL
#: LibvirtDriver._create_image before ServersTestBase mocks it.
REAL_CREATE_IMAGE = libvirt_driver.LibvirtDriver._create_image


def api_paste_config():
    """Nova's api-paste.ini: a wheel install puts it in <prefix>/etc/nova."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, 'etc', 'nova', 'api-paste.ini')
        if os.path.exists(path):
            return path
    return None


class HostEngine(fakes.FakeEngine):
    """FakeEngine of one compute host; thread-safe, as nova-compute needs."""

    def __init__(self, conf=None, state_path='/fake/state', execute=None):
        super().__init__(conf, state_path, execute)
        self._lock = threading.RLock()

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in ('create', 'destroy', 'list', 'list_images', 'reparent',
                    'add_image', 'remove_image'):
            lock = super().__getattribute__('_lock')

            def locked(*args, **kwargs):
                with lock:
                    return attr(*args, **kwargs)
            return locked
        return attr

    def verbs(self, verb):
        return [c for c in self.calls if c[0] == verb]


class FastBootTestBase(libvirt_base.ServersTestBase):
    """ServersTestBase with FastBootDriver and one engine per compute."""

    microversion = 'latest'
    ADMIN_API = True
    # Boots run concurrently in the compute, as in a real storm.
    CAST_AS_CALL = False
    #: Engine class made for each compute; a factory taking (conf, host).
    ENGINE = None

    def setUp(self):
        paste = api_paste_config()
        if paste:
            self.flags(api_paste_config=paste, group='wsgi')
        super().setUp()
        self.flags(use_cachegroup=True, use_cache_snapshot=True,
                   group='fastboot')
        self.flags(driver='nova.quota.NoopQuotaDriver', group='quota')

        # The origin volume as the host sees it once os-brick connected it.
        self.origin = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'origin.raw')
        with open(self.origin, 'wb') as f:
            f.truncate(64 * 1024 * 1024)
        self.connects = []
        self.disconnects = []
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.volume.volume.LibvirtFakeVolumeDriver.'
            'connect_volume',
            side_effect=self._fake_connect_volume))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.volume.volume.LibvirtFakeVolumeDriver.'
            'disconnect_volume',
            side_effect=self._fake_disconnect_volume))

        # The shared volume is marked cacheable. volume_fields adds fields
        # to volumes; volume_owners makes volumes visible to one project
        # only, as Cinder's project-scoped policy does (even for a project
        # admin, as this test API's user is).
        fake_get = self.cinder.fake_get
        self.volume_fields = {
            ORIGIN_VOLUME: {'volume_metadata': {'fastboot_cacheable': 'true'}},
        }
        self.volume_owners = {}

        def get_volume(context, volume_id, microversion=None):
            owner = self.volume_owners.get(volume_id)
            if owner is not None and context.project_id != owner:
                raise nova_exception.VolumeNotFound(volume_id=volume_id)
            volume = fake_get(context, volume_id, microversion=microversion)
            volume.update(self.volume_fields.get(volume_id, {}))
            return volume
        self.useFixture(fixtures.MockPatch(
            'nova.volume.cinder.API.get', side_effect=get_volume,
            autospec=False))

        # One engine per compute host, made when its driver first asks.
        self.engines = {}
        self.restarts = {}
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.storage.get_engine',
            side_effect=self._get_engine))

    def _clear_attrs(self):
        # pytest needs nova's TestCase to keep its attributes.
        pass

    def _get_engine(self, conf, state_path=None, execute=None):
        host = conf.host
        if host in self.engines:
            # A restarted nova-compute finds its host's engine (the state
            # file of a real one); only one driver asks at a time.
            self.assertEqual(1, self.restarts.get(host, 0))
            self.restarts[host] = 0
            return self.engines[host]
        engine = self.make_engine(conf, host)
        self.engines[host] = engine
        return engine

    def restart_compute(self, hostname):
        """Restart nova-compute on ``hostname``; its engine lives on."""
        self.restarts[hostname] = 1
        self.flags(host=hostname)
        return self.restart_compute_service(hostname)

    def make_engine(self, conf, host):
        return HostEngine(conf, state_path='/fake/%s' % host)

    def _fake_connect_volume(self, connection_info, instance):
        connection_info['data']['device_path'] = self.origin
        self.connects.append((instance.host, instance.uuid))

    def _fake_disconnect_volume(self, connection_info, instance,
                                force=False):
        self.disconnects.append((instance.host, instance.uuid))

    def _setup_compute_service(self):
        self.flags(compute_driver=DRIVER)

    def start_compute(self, hostname='compute1', *args, **kwargs):
        # The driver reads [DEFAULT] host when it makes its engine.
        # (restart_compute_service passes the libvirt arguments by
        # position.)
        self.flags(host=hostname)
        return super().start_compute(hostname, *args, **kwargs)

    # -- helpers -------------------------------------------------------

    def boot_from_origin(self, count=1, hosts=None):
        """Boot ``count`` servers from the shared volume.

        Nova refuses ``min_count``/``max_count`` > 1 with any
        ``source_type=volume`` mapping, multiattach or not
        (nova.compute.api "Cannot attach one or more volumes to multiple
        instances"), so this sends ``count`` requests, then waits for all.

        :param hosts: spread the servers over these hosts, round robin.
        :returns: (servers, seconds until all are ACTIVE)
        """
        start = time.monotonic()
        servers = []
        for i in range(count):
            body = self._build_server(name='fb-%d' % i, image_uuid='',
                                      networks='none')
            body['block_device_mapping_v2'] = [{
                'boot_index': 0, 'uuid': ORIGIN_VOLUME,
                'source_type': 'volume', 'destination_type': 'volume'}]
            if hosts:
                body['host'] = hosts[i % len(hosts)]
            servers.append(self.api.post_server({'server': body}))
        # A storm takes a while to get through the scheduler.
        servers = [self._wait_for_state_change(s, 'ACTIVE',
                                               max_retries=1200)
                   for s in servers]
        return servers, time.monotonic() - start

    def make_fastboot_image(self, volume_id, name='fastboot-img'):
        """A small Glance image naming ``volume_id`` as its origin."""
        ctxt = nova_context.get_admin_context()
        image = self.glance.create(ctxt, {
            'name': name, 'status': 'active', 'container_format': 'bare',
            'disk_format': 'qcow2', 'size': 196608, 'min_ram': 0,
            'min_disk': 0, 'is_public': True, 'visibility': 'public',
            # The trait keeps these servers on fastboot hosts (README).
            'properties': {
                'fastboot_origin_volume': volume_id,
                'trait:CUSTOM_FASTBOOT_CACHE_SNAPSHOT': 'required'}})
        return image['id']

    def boot_image(self, image_id, count, host=None, expected='ACTIVE'):
        """Boot ``count`` servers from ``image_id`` in one request.

        :returns: (servers, seconds until all reached ``expected``)
        """
        start = time.monotonic()
        body = self._build_server(name='fbi', image_uuid=image_id,
                                  networks='none')
        body.update(min_count=count, max_count=count,
                    return_reservation_id=True)
        if host:
            body['host'] = host
        resp = self.api.api_post('/servers', {'server': body}).body
        servers = self.api.get_servers(
            search_opts={'reservation_id': resp['reservation_id']})
        self.assertEqual(count, len(servers))
        # A storm takes a while to get through the scheduler; a failure
        # comes at once.
        retries = 1200 if expected == 'ACTIVE' else 120
        servers = [self._wait_for_state_change(s, expected,
                                               max_retries=retries)
                   for s in servers]
        return servers, time.monotonic() - start

    def faults(self, server):
        """Messages of the server's faults, newest first."""
        ctxt = nova_context.get_admin_context()
        cell = objects.InstanceMapping.get_by_instance_uuid(
            ctxt, server['id']).cell_mapping
        with nova_context.target_cell(ctxt, cell) as cctxt:
            faults = objects.InstanceFaultList.get_by_instance_uuids(
                cctxt, [server['id']])
        return [f.message for f in faults]

    def attachments(self, volume_id=ORIGIN_VOLUME):
        """The fixture's Cinder attachments of ``volume_id``, by id."""
        return dict(self.cinder.volume_to_attachment.get(volume_id, {}))

    def wait_for(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s' % predicate)
            time.sleep(0.05)

    def delete_all(self, servers):
        start = time.monotonic()
        for server in servers:
            self._delete_server(server)
        return time.monotonic() - start

    def guest_disks(self, server):
        """The <disk> elements of the guest libvirt got for ``server``."""
        host = server['OS-EXT-SRV-ATTR:host']
        conn = self.computes[host].driver._host.get_connection()
        xml = conn.lookupByUUIDString(server['id']).XMLDesc(0)
        return ElementTree.fromstring(xml).findall('./devices/disk')
