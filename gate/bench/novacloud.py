"""In-process Nova for the Nova benchmark, and its ways to boot.

Importing this module imports nova's functional test package
(``nova.tests.functional``), which monkey-patches eventlet: import it
only in a process that runs Nova in-process (``python -m
gate.bench.nova``, or the functional-nova tests).

API, conductor, scheduler, placement and the computes run in this process
(nova's ``_IntegratedTestBase``) with FastBootDriver over nova's fake
libvirt, so no guest runs; the fastboot disks are made by the real qemu
engine (one qemu-storage-daemon per compute). Cinder is nova's
CinderFixture whose volumes are real files
(:mod:`gate.bench.volstore`): a volume created from the snapshot
is a real copy.

The cloud is a nova TestCase driven by hand (:func:`run`): its setUp
starts every service, its cleanups stop them, whatever happens.
"""

import contextlib
import os
import shutil
import sys
import tempfile
import time

import fixtures
from nova import context as nova_context
from nova.tests.functional.libvirt import base as libvirt_base
from oslo_config import cfg
import testtools

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova.virt import driver
from fastboot_nova.virt import imageops
from gate.bench import volstore

DRIVER = 'fastboot.driver.FastBootDriver'
CACHEABLE_KEY = 'fastboot_cacheable'


class BenchError(Exception):
    """The in-process cloud failed, or a server did not come up."""


#: Signal number that asked the run to stop, set by :func:`request_stop`.
_stop = {'signal': None}


def request_stop(signum, _frame=None):
    """Signal handler: stop at the next wait, then clean up.

    An exception raised by the handler itself would land in whichever
    green thread runs at that moment, not in the benchmark's.
    """
    _stop['signal'] = signum


def stop_signal():
    """The signal that asked the run to stop, or None."""
    return _stop['signal']


def check_stop():
    if _stop['signal'] is not None:
        raise BenchError('stopped by signal %d' % _stop['signal'])


def api_paste_config():
    """Nova's api-paste.ini: a wheel install puts it in <prefix>/etc/nova."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, 'etc', 'nova', 'api-paste.ini')
        if os.path.exists(path):
            return path
    return None


def engine_conf():
    """A private [fastboot] configuration with the defaults."""
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    return conf


# -- the boot steps ----------------------------------------------------------
#
# Each starts ``count`` servers named ``prefix...`` and returns the number of
# API requests it sent; the runner waits for them. Keep them to this one
# job: the fastboot mode takes one of FASTBOOT_BOOTS.

def boot_stock(cloud, snapshot_id, size_gib, count, prefix):
    """Stock Nova: one multi-create request, a new volume per server."""
    body = cloud._build_server(name=prefix, image_uuid='', networks='none')
    body['block_device_mapping_v2'] = [{
        'boot_index': 0, 'uuid': snapshot_id, 'source_type': 'snapshot',
        'destination_type': 'volume', 'volume_size': size_gib,
        'delete_on_termination': True}]
    body['min_count'] = body['max_count'] = count
    cloud.api.post_server({'server': body})
    return 1


def boot_fastboot_per_server(cloud, volume_id, count, prefix):
    """fastboot, a request per server booting from the shared volume.

    Nova refuses ``min_count`` > 1 with a ``source_type=volume`` mapping,
    multiattach or not.
    """
    for i in range(count):
        check_stop()
        body = cloud._build_server(name='%s-%d' % (prefix, i + 1),
                                   image_uuid='', networks='none')
        body['block_device_mapping_v2'] = [{
            'boot_index': 0, 'uuid': volume_id, 'source_type': 'volume',
            'destination_type': 'volume'}]
        cloud.api.post_server({'server': body})
    return count


def boot_fastboot_image(cloud, volume_id, count, prefix):
    """fastboot in one request: a fastboot image over the shared volume.

    The Glance image names the volume in ``fastboot_origin_volume``; Nova
    accepts ``min_count`` = ``max_count`` = N for an image, and names the
    servers ``prefix-1`` .. ``prefix-N``.
    """
    image_id = cloud.create_fastboot_image(volume_id)
    body = cloud._build_server(name=prefix, image_uuid=image_id,
                               networks='none')
    body['min_count'] = body['max_count'] = count
    cloud.api.post_server({'server': body})
    return 1


#: ``--fastboot-requests`` choices: how the fastboot mode asks Nova.
FASTBOOT_BOOTS = {
    'one': boot_fastboot_image,
    'per-server': boot_fastboot_per_server,
}

#: The fastboot boot step the benchmark uses by default.
FASTBOOT_BOOT = boot_fastboot_image


# -- the cloud ---------------------------------------------------------------

class BenchCloud(libvirt_base.ServersTestBase):
    """One in-process cloud; :meth:`test_bench` runs the plan given."""

    microversion = 'latest'
    ADMIN_API = True
    # Builds run concurrently in the compute, as in a real storm.
    CAST_AS_CALL = False

    #: Set by :func:`run`: a callable taking this cloud.
    plan = None
    skip_reshape_listing = True

    def setUp(self):
        # Registered first, so run last: after Nova's services stopped,
        # when no build in flight can start a storage daemon again.
        # Short, under /tmp: engines keep unix sockets in their state path.
        self.workdir = tempfile.mkdtemp(prefix='fbnb-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.engines = {}
        self.addCleanup(self._shutdown_engines)
        paste = api_paste_config()
        if paste:
            self.flags(api_paste_config=paste, group='wsgi')
        super().setUp()
        self.flags(use_cachegroup=True, use_cache_snapshot=True,
                   group='fastboot')
        self.flags(driver='nova.quota.NoopQuotaDriver', group='quota')
        # Room for 100s of tiny servers on one fake host.
        self.flags(cpu_allocation_ratio=128.0, ram_allocation_ratio=128.0)

        self.store = volstore.VolumeStore(
            os.path.join(self.workdir, 'volumes'))
        self.shared = set()
        self.snapshots = {}
        self.fastboot_images = set()
        self._conf = engine_conf()

        for name, fn in (('create', self._volume_create),
                         ('delete', self._volume_delete),
                         ('get', self._volume_get),
                         ('attachment_update', self._attachment_update)):
            self.useFixture(fixtures.MockPatch(
                'nova.volume.cinder.API.' + name, side_effect=fn,
                autospec=False))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.volume.volume.LibvirtFakeVolumeDriver.'
            'connect_volume', side_effect=self._connect_volume))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.volume.volume.LibvirtFakeVolumeDriver.'
            'disconnect_volume', side_effect=lambda *a, **k: None))
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.storage.get_engine',
            side_effect=self._get_engine))

    def _clear_attrs(self):
        # Keep the attributes: the result is read after the run.
        pass

    def _setup_compute_service(self):
        self.flags(compute_driver=DRIVER)

    def start_compute(self, hostname='compute1', **kwargs):
        # The driver reads [DEFAULT] host when it makes its engine.
        self.flags(host=hostname)
        return super().start_compute(hostname=hostname, **kwargs)

    def test_bench(self):
        # Each claim lists the allocations of every server on the node
        # (one placement request each: quadratic in servers) for the
        # driver to reshape with; this driver never reshapes, so skip it,
        # in both modes alike.
        if self.skip_reshape_listing:
            self.useFixture(fixtures.MockPatch(
                'nova.scheduler.client.report.SchedulerReportClient.'
                'get_allocations_for_provider_tree', return_value={}))
        self.plan(self)

    # -- the real engine, one per compute --------------------------------

    def _get_engine(self, conf, state_path=None, execute=None):
        from fastboot_nova.storage.qemu import engine as qemu_engine
        host = conf.host
        path = os.path.join(self.workdir, host)
        engine = qemu_engine.QemuEngine(self._conf, state_path=path)
        self.engines[host] = engine
        return engine

    def _shutdown_engines(self):
        for engine in self.engines.values():
            engine.shutdown()

    # -- Cinder with real volume files -----------------------------------

    def add_snapshot(self, image):
        """A volume snapshot backed by a real file holding ``image``."""
        snapshot_id = 'snap-' + os.urandom(4).hex()
        size_gib = self.store.make_snapshot(snapshot_id, image)
        self.cinder.volume_snapshots[snapshot_id] = {
            'id': snapshot_id, 'volume_id': 'bench-source',
            'display_name': snapshot_id, 'size': size_gib,
            'status': 'available'}
        self.snapshots[snapshot_id] = size_gib
        return snapshot_id, size_gib

    def _volume_create(self, ctx, size, name, description, snapshot=None,
                       image_id=None, volume_type=None, metadata=None,
                       availability_zone=None):
        if not snapshot:
            raise BenchError('the benchmark creates volumes from its '
                             'snapshot only')
        volume = self.cinder.fake_vol_create(
            ctx, size, name, description, snapshot=snapshot,
            volume_type=volume_type, metadata=metadata,
            availability_zone=availability_zone)
        self.store.copy(snapshot['id'], volume['id'])
        return volume

    def create_shared_volume(self, snapshot_id):
        """The operator's one volume: multiattach, cacheable, one copy."""
        snapshot = self.cinder.volume_snapshots[snapshot_id]
        volume = self._volume_create(
            None, snapshot['size'], 'fastboot-origin', '', snapshot=snapshot,
            metadata={CACHEABLE_KEY: 'true'})
        volume['multiattach'] = True
        self.shared.add(volume['id'])
        return volume['id']

    def create_fastboot_image(self, volume_id):
        """A stub Glance image whose origin is ``volume_id`` (README)."""
        image = self.glance.create(nova_context.get_admin_context(), {
            'name': 'fastboot-' + volume_id, 'status': 'active',
            'container_format': 'bare', 'disk_format': 'qcow2',
            'size': 196608, 'min_ram': 0, 'min_disk': 0,
            'is_public': True, 'visibility': 'public',
            'properties': {
                imageops.ORIGIN_PROPERTY: volume_id,
                # Keeps the servers on fastboot hosts.
                'trait:' + driver.TRAIT: 'required'}})
        self.fastboot_images.add(image['id'])
        return image['id']

    def delete_fastboot_images(self):
        ctxt = nova_context.get_admin_context()
        while self.fastboot_images:
            self.glance.delete(ctxt, self.fastboot_images.pop())

    def _volume_delete(self, ctx, volume_id):
        self.cinder.volumes.pop(volume_id, None)
        self.shared.discard(volume_id)
        self.store.delete(volume_id)

    def _volume_get(self, ctx, volume_id, microversion=None):
        volume = self.cinder.fake_get(ctx, volume_id,
                                      microversion=microversion)
        if volume_id in self.shared:
            volume['multiattach'] = True
            volume['volume_metadata'] = {CACHEABLE_KEY: 'true'}
        return volume

    def _attachment_update(self, ctx, attachment_id, connector,
                           mountpoint=None):
        volume_id, attachment, _all = self.cinder._find_attachment(
            attachment_id)
        if volume_id not in self.shared:
            return self.cinder.fake_attachment_update(
                ctx, attachment_id, connector, mountpoint=mountpoint)
        # The fixture allows one connected attachment except on its own
        # multiattach volume; the shared volume is multiattach too.
        attachment['connector'] = connector
        return {'id': attachment_id,
                'connection_info': self.cinder._find_connection_info(
                    volume_id, attachment_id)}

    def _connect_volume(self, connection_info, instance):
        # What os-brick gives the host: a local path to the volume.
        volume_id = connection_info['data']['volume_id']
        connection_info['data']['device_path'] = self.store.path(volume_id)

    # -- waiting ---------------------------------------------------------

    def servers_named(self, prefix):
        found = self.api.get_servers(
            detail=True, search_opts={'name': '^%s-' % prefix})
        return [s for s in found if s['name'].startswith(prefix + '-')]

    def wait_all(self, prefix, count, status, timeout):
        """Wait until ``count`` servers ``prefix-*`` are ``status``.

        ``status`` None waits until none is left.
        """
        deadline = time.monotonic() + timeout
        while True:
            check_stop()
            servers = self.servers_named(prefix)
            failed = [s for s in servers if s['status'] == 'ERROR']
            if failed:
                raise BenchError('%d server(s) %s-* went to ERROR: %s' % (
                    len(failed), prefix, failed[0].get('fault')))
            if status is None and not servers:
                return []
            if (status is not None and len(servers) == count and
                    all(s['status'] == status for s in servers)):
                return servers
            if time.monotonic() > deadline:
                raise BenchError('timed out after %ds waiting for %d '
                                 'server(s) %s-* to be %s; %d seen' % (
                                     timeout, count, prefix,
                                     status or 'deleted', len(servers)))
            time.sleep(0.2)

    def delete_all(self, servers):
        for server in servers:
            self.api.delete_server(server['id'])


def run(plan, skip_reshape_listing=True):
    """Start the cloud, call ``plan(cloud)``, stop the cloud.

    :param skip_reshape_listing: see :meth:`BenchCloud.test_bench`.

    :raises BenchError: with Nova's traceback if setUp or the plan failed.
    """
    case = BenchCloud('test_bench')
    case.plan = plan
    case.skip_reshape_listing = skip_reshape_listing
    result = testtools.TestResult()
    with contextlib.ExitStack() as stack:
        # The whole benchmark is one "test": no per-test timeout, and its
        # output is the caller's, not captured.
        for name in ('OS_TEST_TIMEOUT', 'OS_STDOUT_CAPTURE',
                     'OS_STDERR_CAPTURE'):
            stack.enter_context(fixtures.EnvironmentVariable(name, '0'))
        case.run(result)
    problems = result.errors + result.failures
    if problems:
        raise BenchError('the in-process cloud failed:\n%s' % '\n'.join(
            str(tb) for _test, tb in problems))
    if result.skipped:
        raise BenchError('the in-process cloud was skipped: %s' % (
            result.skipped,))
    return case
