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
    the engine's disk, writable, not shareable: ``<disk type='file'>``
    qcow2 (qemu backend) or ``<disk type='block'>`` raw (dm backend)
``_disconnect_volume``
    the origin stays connected while other disks of this host use its cache
``_cleanup(cleanup_instance_disks=True)``
    (delete, failed spawn) the overlay is destroyed; the cache stays

A server booted from a *fastboot image* (Glance property
``fastboot_origin_volume``, see :mod:`fastboot_nova.virt.imageops`) gets
the same overlay without any volume mapping, which lets Nova build N of
them in one request:

``spawn``, ``_hard_reboot``
    the server's own Cinder attachment of the origin is made (or found),
    the origin connected once per host, the overlay made (or found)
``_create_and_inject_local_root``
    nothing: the image is never downloaded
``_get_guest_disk_config('disk')``
    the engine's disk, as for a root volume
``_cleanup(cleanup_instance_disks=True)``, or of a server evacuated away
    overlay destroyed, attachment deleted, origin disconnected when the
    host's last server of the cache leaves
``process_instances_at_startup``
    a server with an overlay but no attachment gets one

Operations that would copy or move the overlay are refused with a clear
fault: resize and cold migration, live migration (every fastboot
server), ``snapshot`` (createImage, shelve) and rescue from the fastboot
image itself (fastboot-image servers). Rebuild of a fastboot-image server
goes through destroy and spawn, so it gets a fresh overlay and attachment
(covered by the functional tests, as are stop/start and evacuate).
"""

import functools

from oslo_log import log as logging

from nova import exception as nova_exception
from nova.virt import block_device as driver_block_device
from nova.virt import driver as virt_driver
from nova.virt.libvirt import driver as libvirt_driver

from fastboot_nova import conf as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.virt import cacheops
from fastboot_nova.virt import imageops
from fastboot_nova.virt import notifications
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
        base = libvirt_driver.LibvirtDriver
        self._imageops = imageops.ImageOps(
            self._cacheops, self._snapshotops, self._volume_api,
            connect=functools.partial(base._connect_volume, self),
            disconnect=functools.partial(base._disconnect_volume, self),
            connector=self.get_volume_connector, host=CONF.host)
        self._imageops.emitter = notifications.Emitter(CONF, CONF.host)

    # -- host ----------------------------------------------------------

    def init_host(self, host):
        super().init_host(host)
        if self._cacheops.enabled:
            self._reconcile_engine()
            caches = self._cacheops.list_caches()
            LOG.info('fastboot cache group: %d cached volume(s), %d disk(s)',
                     len(caches), sum(len(c.vms) for c in caches))
            self._cacheops.hierarchy.start(host)

    def _reconcile_engine(self):
        """Repair the host's engine before any server of it starts.

        A host crash takes the cache daemon down with nova-compute; the
        servers' disks read through its exports, and nothing else brings
        it back before a server is started or rebooted. A failure is
        logged: nova-compute must start all the same (the next engine
        operation tries again).
        """
        try:
            report = self._cacheops.engine.reconcile()
        except exception.FastbootException as e:
            LOG.error('fastboot engine reconcile failed: %s', e.msg)
            return None
        if report.daemon_restarted or not report.clean:
            LOG.warning('fastboot engine repaired at start: %s', report)
        return report

    def cleanup_host(self, host):
        self._cacheops.hierarchy.stop()
        super().cleanup_host(host)

    def process_instances_at_startup(self, context, instances):
        # The compute manager's init_host hook, with this host's servers
        # (evacuated ones already destroyed).
        instances = super().process_instances_at_startup(context, instances)
        if self._cacheops.enabled:
            self._imageops.reconcile(context, instances)
        return instances

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
        if self._imageops.is_fastboot(instance):
            self._imageops.prepare(context, instance)
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

    # -- fastboot image: the root disk is the overlay -------------------

    def _create_and_inject_local_root(self, context, instance, disk_mapping,
                                      booted_from_volume, suffix, disk_images,
                                      injection_info, fallback_from_host):
        if not suffix and self._imageops.is_fastboot(instance):
            # spawn() made the overlay; the image is never fetched.
            return False
        return super()._create_and_inject_local_root(
            context, instance, disk_mapping, booted_from_volume, suffix,
            disk_images, injection_info, fallback_from_host)

    def _get_guest_disk_config(self, instance, name, disk_mapping, flavor,
                               image_type=None, boot_order=None):
        conf = super()._get_guest_disk_config(
            instance, name, disk_mapping, flavor, image_type=image_type,
            boot_order=boot_order)
        if name == 'disk' and self._imageops.is_fastboot(instance):
            path = self._imageops.disk_path(instance)
            if path is None:
                raise nova_exception.InstanceNotReady(
                    instance_id=instance.uuid)
            # Bus, cache mode, QoS and boot order stay the image backend's.
            snapshotops.set_disk_source(conf, path, self._cacheops.backend)
        return conf

    def _get_instance_disk_info_from_config(self, guest_config,
                                            block_device_info):
        # Overlays are the engine's, not instance-directory disks Nova may
        # size, copy or re-create from the image.
        disks = super()._get_instance_disk_info_from_config(
            guest_config, block_device_info)
        if not self._cacheops.enabled or not disks:
            return disks
        # One lookup per domain (this runs for every domain in each
        # resource tracker pass): never list every disk here.
        overlay = self._imageops.overlay_path(guest_config.uuid)
        return [d for d in disks if d['path'] != overlay]

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        if self._imageops.is_fastboot(instance):
            # The compute manager has just deleted the server's attachment
            # (it has no block device mapping): attach again.
            self._imageops.prepare(context, instance)
        return super().reboot(
            context, instance, network_info, reboot_type,
            block_device_info=block_device_info,
            bad_volumes_callback=bad_volumes_callback,
            accel_info=accel_info, share_info=share_info)

    def _hard_reboot(self, context, instance, network_info, share_info,
                     block_device_info=None, accel_info=None):
        if self._imageops.is_fastboot(instance):
            # Reconnects the origin after a host restart; reuses the
            # attachment and the overlay.
            self._imageops.prepare(context, instance)
        return super()._hard_reboot(
            context, instance, network_info, share_info,
            block_device_info=block_device_info, accel_info=accel_info)

    # -- operations that would copy or move the overlay ------------------

    def _is_fastboot_server(self, instance, block_device_info=None):
        if not self._cacheops.enabled:
            return False
        if imageops.is_fastboot_image(instance):
            return True
        for vol in virt_driver.block_device_info_get_mapping(
                block_device_info):
            if self._snapshotops.is_marked(vol.get('connection_info')):
                return True
        return False

    @staticmethod
    def _refusal(operation):
        return ('%s is not supported for a fastboot server: its disk is a '
                'host-local overlay over a shared origin volume' % operation)

    def snapshot(self, context, instance, image_id, update_task_state):
        if self._is_fastboot_server(instance):
            raise nova_exception.Invalid(self._refusal('Snapshot'))
        return super().snapshot(context, instance, image_id,
                                update_task_state)

    def rescue(self, context, instance, network_info, image_meta,
               rescue_password, block_device_info, share_info):
        # The fastboot image is a stub: rescuing from it boots nothing
        # useful. Another rescue image works: the overlay is the second
        # disk.
        if (self._imageops.is_fastboot(instance) and
                getattr(image_meta, 'id', None) == instance.image_ref):
            raise nova_exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason='a fastboot server must be rescued from another '
                       'image than its fastboot image')
        return super().rescue(context, instance, network_info, image_meta,
                              rescue_password, block_device_info, share_info)

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        if self._is_fastboot_server(instance, block_device_info):
            raise nova_exception.InstanceFaultRollback(
                nova_exception.ResizeError(
                    reason=self._refusal('Resize or cold migration')))
        return super().migrate_disk_and_power_off(
            context, instance, dest, flavor, network_info,
            block_device_info=block_device_info, timeout=timeout,
            retry_interval=retry_interval)

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data,
                                      block_device_info=None):
        if self._is_fastboot_server(instance, block_device_info):
            raise nova_exception.MigrationPreCheckError(
                reason=self._refusal('Live migration'))
        return super().check_can_live_migrate_source(
            context, instance, dest_check_data,
            block_device_info=block_device_info)

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
            self._cacheops.remove_if_idle(image)
        super()._disconnect_volume(
            context, connection_info, instance, encryption=encryption,
            destroy_secrets=destroy_secrets, force=force)

    def _cleanup(self, context, instance, network_info,
                 block_device_info=None, destroy_vifs=True,
                 cleanup_instance_dir=False, cleanup_instance_disks=False,
                 destroy_secrets=True):
        # The domain is gone by now. Destroy the overlay before the volumes
        # are disconnected, so the last server of a cache releases the
        # origin connection. A server evacuated from this host keeps its
        # disks when Nova finds the instance storage shared, but the
        # overlay is host-local: it goes too.
        if self._cacheops.enabled and (
                cleanup_instance_disks or self._imageops.moved_away(instance)):
            if (imageops.is_fastboot_image(instance) or
                    imageops.SM_VOLUME in imageops.system_metadata(instance)):
                self._imageops.release(context, instance)
            else:
                self._snapshotops.destroy_disk(instance)
        return super()._cleanup(
            context, instance, network_info,
            block_device_info=block_device_info, destroy_vifs=destroy_vifs,
            cleanup_instance_dir=cleanup_instance_dir,
            cleanup_instance_disks=cleanup_instance_disks,
            destroy_secrets=destroy_secrets)
