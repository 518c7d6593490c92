"""Per-server snapshot disks over a cached volume.

Each server booted the fastboot way gets one disk, ``nova-<instance uuid>``:
a private copy-on-write layer over the host cache of its root volume (with
the ``qemu`` backend a qcow2 overlay file whose backing is the cache
export, with ``dm`` a raw device-mapper block device). Guest writes stay
in that layer; the cache and the origin volume are never written.

The overlay is instance storage, like an ephemeral disk, not a volume
connection: LibvirtDriver disconnects volumes on every hard reboot, power
cycle and migration, so the overlay is made when the root volume is
connected (and reused if it exists) and destroyed only when the instance's
disks are destroyed (delete, failed spawn, reschedule).

State: ``connection_info['fastboot']`` (saved by Nova in the block device
mapping) records the image, disk and overlay path; the engine's state file
records the disk itself. Both names derive from the instance and volume
ids, so nothing is lost if Nova refreshes the connection info.
"""

from oslo_log import log as logging

from nova.virt.libvirt.volume import volume as libvirt_volume

from fastboot_nova import exception

LOG = logging.getLogger(__name__)

#: Key of the fastboot record in a block device's connection_info.
MARKER = 'fastboot'
DISK_PREFIX = 'nova-'

#: How libvirt opens a VM disk of each backend: ``(disk type, format)``.
DISK_SOURCES = {
    'qemu': ('file', 'qcow2'),
    'dm': ('block', 'raw'),
}


def set_disk_source(conf, disk_path, backend):
    """Point the libvirt disk ``conf`` at a VM disk of ``backend``.

    The engine returns the disk's path; what libvirt must be told about it
    (a qcow2 file, a raw block device) follows from the backend. The one
    place that maps one to the other, for root volumes and fastboot images.
    """
    source_type, disk_format = DISK_SOURCES[backend]
    conf.source_type = source_type
    conf.source_path = disk_path
    conf.driver_format = disk_format
    return conf


class SnapshotOps:
    """Creates, finds, describes and destroys the per-server disks."""

    def __init__(self, cacheops, host):
        self._cacheops = cacheops
        # Builds the generic part of a volume disk (bus, serial, cache mode,
        # QoS, boot order...); the source is replaced by the overlay.
        self._base_driver = libvirt_volume.LibvirtBaseVolumeDriver(
            host, is_block_dev=False)

    @staticmethod
    def disk_name(instance_uuid):
        return DISK_PREFIX + instance_uuid

    @staticmethod
    def is_marked(connection_info):
        return bool(connection_info and connection_info.get(MARKER))

    def mark(self, connection_info, instance, volume_id):
        """Record that this connection is the server's fastboot root."""
        connection_info[MARKER] = {
            'image': self._cacheops.image_name(volume_id),
            'disk': self.disk_name(instance.uuid),
        }

    def ensure_disk(self, connection_info, instance):
        """Create the server's overlay, or find the one it has.

        Called after the origin volume is connected. Updates the record in
        ``connection_info`` with the overlay path.

        :returns: :class:`fastboot_nova.storage.base.VmDisk`
        """
        record = connection_info[MARKER]
        image, name = record['image'], record['disk']
        engine = self._cacheops.engine
        disk = self._find(name)
        if disk is None:
            location = self._cacheops.origin_location(connection_info)
            if not location:
                raise exception.InvalidLocation(
                    location=location,
                    reason='the volume driver gave no device_path')
            self._cacheops.prepare(image, location)
            try:
                disk = engine.create(name, image, location)
                LOG.info('Created fastboot disk %s on cache %s',
                         name, image)
            except exception.VmExists:
                # A concurrent call for the same server won.
                disk = self._find(name)
        elif disk.image != image:
            raise exception.VmExists(vm=name)
        record['path'] = disk.path
        return disk

    def _find(self, name):
        return self._cacheops.engine.get_disk(name)

    def disk_config(self, connection_info, disk_info):
        """libvirt ``<disk>`` of the server's own disk.

        qemu backend: ``<disk type='file'><driver type='qcow2'/><source
        file=OVERLAY/>``, QEMU follows the overlay's backing (the cache
        export) itself; dm backend: ``<disk type='block'><driver
        type='raw'/><source dev=DEVICE/>``.
        """
        conf = self._base_driver.get_config(connection_info, disk_info)
        conf.source_device = 'disk'
        set_disk_source(conf, connection_info[MARKER]['path'],
                        self._cacheops.backend)
        # The overlay is private and writable even though the origin is a
        # read-only or multiattach volume.
        conf.readonly = False
        conf.shareable = False
        return conf

    def destroy_disk(self, instance):
        """Destroy the server's overlay; the cache stays for later servers.

        :returns: True if a disk was destroyed.
        """
        name = self.disk_name(instance.uuid)
        try:
            self._cacheops.engine.destroy(name)
        except exception.VmNotFound:
            return False
        LOG.info('Destroyed fastboot disk %s', name)
        return True
