"""FastBootDriver: LibvirtDriver plus the host cache group.

Set ``[DEFAULT] compute_driver = fastboot.driver.FastBootDriver`` (Nova
imports it through the shim ``nova.virt.fastboot.driver``) and enable
``[fastboot] use_cachegroup`` and ``use_cache_snapshot``.

The driver is a facade: the decisions and engine calls live in
:mod:`fastboot_nova.virt.cacheops` (which volumes are cached, the engine)
and :mod:`fastboot_nova.virt.snapshotops` (the per-server disk). A server
whose root volume is cacheable (see cacheops) boots from a private qcow2
overlay whose backing is the host cache export of that volume; any other
server is handled exactly as by LibvirtDriver.

Life cycle of a fastboot root disk:

``spawn``
    the root volume's connection is marked (``connection_info['fastboot']``)
``_connect_volume``
    the origin is connected by the ordinary libvirt volume driver (os-brick),
    then the engine caches it (once per host) and creates the overlay (once
    per server; reused on hard reboot, power on, host reboot)
``_get_volume_config``
    ``<disk type='file'>`` on the overlay, qcow2, writable, not shareable
``_disconnect_volume``
    the origin stays connected while other disks of this host use its cache
``_cleanup(cleanup_instance_disks=True)``
    (delete, failed spawn) the overlay is destroyed; the cache stays
"""

from oslo_log import log as logging

from nova.virt import block_device as driver_block_device
from nova.virt import driver as virt_driver
from nova.virt.libvirt import driver as libvirt_driver

from fastboot_nova import conf as fastboot_conf
from fastboot_nova.virt import cacheops
from fastboot_nova.virt import snapshotops

LOG = logging.getLogger(__name__)

# fastboot_nova.conf registers [fastboot] on the global ConfigOpts, which
# is also Nova's CONF.
CONF = fastboot_conf.CONF

#: Capabilities that differ from LibvirtDriver's. Servers share one origin
#: volume, so multiattach must be available.
CAPABILITY_OVERRIDES = {
    'supports_multiattach': True,
}

#: Trait reported on the compute node when the cache group is enabled, so
#: flavors or images can ask for fastboot hosts
#: (``trait:CUSTOM_FASTBOOT_CACHE_SNAPSHOT=required``).
TRAIT = 'CUSTOM_FASTBOOT_CACHE_SNAPSHOT'


class FastBootDriver(libvirt_driver.LibvirtDriver):
    """LibvirtDriver whose cacheable root volumes go through the engine."""

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self.capabilities = dict(self.capabilities, **CAPABILITY_OVERRIDES)
        self._cacheops = cacheops.CacheOps(CONF)
        self._snapshotops = snapshotops.SnapshotOps(self._cacheops,
                                                    self._host)

    # -- host ----------------------------------------------------------

    def init_host(self, host):
        super().init_host(host)
        if self._cacheops.enabled:
            caches = self._cacheops.list_caches()
            LOG.info('fastboot cache group: %d cached volume(s), %d disk(s)',
                     len(caches), sum(len(c.vms) for c in caches))
            self._cacheops.hierarchy.start(host)

    def cleanup_host(self, host):
        self._cacheops.hierarchy.stop()
        super().cleanup_host(host)

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        super().update_provider_tree(provider_tree, nodename,
                                     allocations=allocations)
        if self._cacheops.enabled:
            provider_tree.add_traits(nodename, TRAIT)
        else:
            provider_tree.remove_traits(nodename, TRAIT)

    # -- spawn: decide which connection is a fastboot root --------------

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        self._mark_fastboot_root(context, instance, block_device_info)
        return super().spawn(
            context, instance, image_meta, injected_files, admin_password,
            allocations, network_info=network_info,
            block_device_info=block_device_info, power_on=power_on,
            accel_info=accel_info)

    def _mark_fastboot_root(self, context, instance, block_device_info):
        if not self._cacheops.enabled:
            return
        for vol in virt_driver.block_device_info_get_mapping(
                block_device_info):
            connection_info = vol.get('connection_info')
            if vol.get('boot_index') != 0 or not connection_info:
                continue
            volume_id = driver_block_device.get_volume_id(connection_info)
            volume = self._volume_api.get(context, volume_id)
            ok, reason = self._cacheops.is_cacheable(volume,
                                                     connection_info)
            if ok:
                self._snapshotops.mark(connection_info, instance, volume_id)
                LOG.debug('Root volume %s boots the fastboot way',
                          volume_id, instance=instance)
            else:
                LOG.debug('Root volume %s is not cached: %s', volume_id,
                          reason, instance=instance)

    # -- volume hooks --------------------------------------------------

    def _connect_volume(self, context, connection_info, instance,
                        encryption=None):
        super()._connect_volume(context, connection_info, instance,
                                encryption=encryption)
        if self._snapshotops.is_marked(connection_info):
            # On failure Nova's cleanup disconnects the origin and
            # destroys whatever disk was made.
            self._snapshotops.ensure_disk(connection_info, instance)

    def _get_volume_config(self, connection_info, disk_info):
        if self._snapshotops.is_marked(connection_info):
            conf = self._snapshotops.disk_config(connection_info, disk_info)
            self._set_cache_mode(conf)
            return conf
        return super()._get_volume_config(connection_info, disk_info)

    def _disconnect_volume(self, context, connection_info, instance,
                           encryption=None, destroy_secrets=True,
                           force=False):
        if self._snapshotops.is_marked(connection_info):
            image = connection_info[snapshotops.MARKER]['image']
            if self._cacheops.users(image):
                # The cache still reads from this origin for other disks
                # of this host (or for this server, on a hard reboot).
                LOG.debug('Keeping origin of cache %s connected', image,
                          instance=instance)
                return
        super()._disconnect_volume(
            context, connection_info, instance, encryption=encryption,
            destroy_secrets=destroy_secrets, force=force)

    def _cleanup(self, context, instance, network_info,
                 block_device_info=None, destroy_vifs=True,
                 cleanup_instance_dir=False, cleanup_instance_disks=False,
                 destroy_secrets=True):
        # The domain is gone by now. Destroy the overlay before the volumes
        # are disconnected, so the last server of a cache releases the
        # origin connection.
        if cleanup_instance_disks and self._cacheops.enabled:
            self._snapshotops.destroy_disk(instance)
        return super()._cleanup(
            context, instance, network_info,
            block_device_info=block_device_info, destroy_vifs=destroy_vifs,
            cleanup_instance_dir=cleanup_instance_dir,
            cleanup_instance_disks=cleanup_instance_disks,
            destroy_secrets=destroy_secrets)
