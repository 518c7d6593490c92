"""Servers booted from a *fastboot image*.

A fastboot image is a small Glance image whose property
``fastboot_origin_volume`` names a shared origin volume. Booting it boots
the origin the fastboot way, and, unlike a ``source_type=volume`` mapping,
Nova accepts ``min_count``/``max_count`` > 1 for an image: N servers are one
request. The image's own bits are never fetched.

Nova copies image properties into ``instance.system_metadata`` as
``image_<property>`` (ImageMetaProps drops unknown properties), which is
where the driver finds the volume. The origin must be:

* visible to the server's project (``volume_api.get`` with the user's
  context: a volume of another project is "not found");
* ``multiattach``: every server holds its own Cinder attachment, and Cinder
  gives a single-attach volume one attachment only;
* cacheable: ``fastboot_cacheable=true`` metadata, not encrypted (the rules
  of :mod:`fastboot_nova.virt.cacheops`).

Anything else fails the build with ``ImageUnacceptable``: Nova sets the
server to ERROR with that message and does not reschedule, since no host
would do better. Host-local failures (engine, os-brick) reschedule like any
spawn failure.

State lives in Nova and in the engine, none of our own:

``system_metadata['fastboot_attachment_id']``, ``['fastboot_volume_id']``,
``['fastboot_host']``
    the server's Cinder attachment (for delete, reboot, host restart)
the engine
    the overlay ``nova-<instance uuid>`` and the cache ``cinder-<volume>``,
    whose location is where the origin is connected on this host.

The origin is connected through the ordinary libvirt volume driver
(os-brick) once per host: by the first server of a host, or after a
restart of nova-compute; it is disconnected when the host's last server
of the cache leaves. A per-cache lock orders connect-and-create against
destroy-and-disconnect.
"""

import random
import re
import time

from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova import exception as nova_exception
from nova import utils as nova_utils

from fastboot_nova import exception
from fastboot_nova.storage import location as location_mod
from fastboot_nova.virt import notifications
from fastboot_nova.virt import snapshotops

LOG = logging.getLogger(__name__)

#: Cinder's refusal of an attachment while another one is in progress.
#: Cinder reads the status again to word the error, so a concurrent
#: attachment that finished in between shows as ``available`` or
#: ``in-use``: a status the reservation accepts, which only that race
#: gives (seen on ministack with two computes attaching one origin).
_BUSY_RE = re.compile(r'to reserve, but the current status is '
                      r'(attaching|reserved|detaching|available|in-use)\b')
ATTACH_ATTEMPTS = 60
ATTACH_RETRY_DELAY = 0.5
_sleep = time.sleep

#: Glance image property naming the origin volume.
ORIGIN_PROPERTY = 'fastboot_origin_volume'
#: Where Nova keeps it (nova.utils.get_system_metadata_from_image).
SM_ORIGIN = 'image_' + ORIGIN_PROPERTY
SM_ATTACHMENT = 'fastboot_attachment_id'
SM_VOLUME = 'fastboot_volume_id'
SM_HOST = 'fastboot_host'


def system_metadata(instance):
    """The server's system metadata as a dict (possibly empty).

    Nova hands drivers Instance objects, whose ``system_metadata`` is a
    dict, and on some paths DB models, whose ``system_metadata`` is a list
    of ``key``/``value`` rows (``nova.utils.instance_sys_meta`` reads both,
    but only from an object with item access). A dict is returned as is,
    so updates to it reach the instance.
    """
    value = getattr(instance, 'system_metadata', None)
    if not value:
        return {}
    if isinstance(value, dict):
        return value
    return nova_utils.metadata_to_dict(value, include_deleted=True)


def origin_volume_id(instance):
    """The origin volume of a fastboot-image server, else None.

    :raises nova.exception.ImageUnacceptable: the property is no UUID.
    """
    value = system_metadata(instance).get(SM_ORIGIN)
    if value is None:
        return None
    if not uuidutils.is_uuid_like(value):
        raise nova_exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason='property %s must be the UUID of a volume, not %r'
            % (ORIGIN_PROPERTY, value))
    return value


def is_fastboot_image(instance):
    """Whether ``instance`` boots from a fastboot image (no validation)."""
    return bool(system_metadata(instance).get(SM_ORIGIN))


class ImageOps:
    """Attach, connect, disconnect and detach the origin of an image.

    :param volume_api: nova.volume.cinder.API
    :param connect: ``connect(context, connection_info, instance)``, the
        libvirt volume driver's connect (sets ``data.device_path``)
    :param disconnect: ``disconnect(context, connection_info, instance)``
    :param connector: ``connector(instance)``: the host connector
    :param host: this compute host's name
    """

    def __init__(self, cacheops, snapshotops_, volume_api, connect,
                 disconnect, connector, host):
        self._cacheops = cacheops
        self._snapshotops = snapshotops_
        self._volume_api = volume_api
        self._connect = connect
        self._disconnect = disconnect
        self._connector = connector
        self._host = host
        #: Caches whose origin this process connected: image -> location.
        self._connected = {}
        self.emitter = notifications.NULL  # the boot-batch timeline

    @property
    def enabled(self):
        return self._cacheops.enabled

    def is_fastboot(self, instance):
        return self.enabled and is_fastboot_image(instance)

    # -- spawn, hard reboot, host restart ------------------------------

    def prepare(self, context, instance):
        """Give a fastboot-image server its overlay; return its path.

        Reuses the server's attachment and overlay when it has them (hard
        reboot, power on, host restart). On failure the caller's cleanup
        (:meth:`release`) removes what was made.
        """
        volume_id = origin_volume_id(instance)
        connection_info = self._ensure_attachment(context, instance,
                                                  volume_id)
        image = self._cacheops.image_name(volume_id)
        server = notifications.server_fields(instance)
        with lockutils.lock('fastboot-' + image):
            self.emitter.emit(context, notifications.CACHE_ATTACH_START,
                              instance.uuid, volume_id, **server)
            location = self._ensure_origin(context, connection_info,
                                           instance, image)
            self.emitter.emit(context, notifications.CACHE_ATTACH_END,
                              instance.uuid, volume_id, **server)
            connection_info['data']['device_path'] = location
            self._snapshotops.mark(connection_info, instance, volume_id)
            try:
                disk = self._snapshotops.ensure_disk(connection_info,
                                                     instance)
            except Exception:
                LOG.exception('fastboot cache group failed for origin %s',
                              volume_id, instance=instance)
                raise
            self.emitter.emit(context, notifications.OVERLAY_CREATED,
                              instance.uuid, volume_id, path=disk.path,
                              **server)
        return disk.path

    def _ensure_attachment(self, context, instance, volume_id):
        """The connection info of the server's attachment, made if needed."""
        sysmeta = system_metadata(instance)
        attachment_id = sysmeta.get(SM_ATTACHMENT)
        if attachment_id and (sysmeta.get(SM_HOST) != self._host or
                              sysmeta.get(SM_VOLUME) != volume_id):
            # Evacuated or rebuilt onto another origin: that attachment is
            # not this host's.
            self._delete_attachment(context, instance, attachment_id)
            attachment_id = None
        if attachment_id:
            try:
                return self._volume_api.attachment_get(
                    context, attachment_id)['connection_info']
            except nova_exception.VolumeAttachmentNotFound:
                # Nova's reboot deletes the Cinder attachments it has no
                # block device mapping for (_delete_dangling_bdms).
                LOG.info('Attachment %s of origin %s is gone; attaching '
                         'again', attachment_id, volume_id,
                         instance=instance)
        return self._attach(context, instance, volume_id)

    def reconcile(self, context, instances):
        """Give each server of this host with an overlay its attachment.

        Run when nova-compute starts: a server whose attachment record was
        lost (no ``fastboot_attachment_id``) or whose Cinder attachment is
        gone (deleted by a reboot that did not finish) gets one, so that
        Cinder knows the origin is in use. Servers without an overlay are
        left to their next start, deleted servers to Nova. Failures are
        logged: they must not stop nova-compute.

        :returns: the uuids of the servers given an attachment.
        """
        overlays = {disk.name for disk in self._cacheops.engine.list()}
        fixed = []
        for instance in instances:
            if (not self.is_fastboot(instance) or
                    instance.host != self._host or
                    snapshotops.SnapshotOps.disk_name(instance.uuid)
                    not in overlays):
                continue
            sysmeta = system_metadata(instance)
            before = sysmeta.get(SM_ATTACHMENT)
            try:
                self._ensure_attachment(context, instance,
                                        origin_volume_id(instance))
            except Exception:
                LOG.exception('Could not check the attachment of the '
                              'fastboot origin', instance=instance)
                continue
            if sysmeta.get(SM_ATTACHMENT) != before:
                LOG.info('Attached origin %s again: attachment %s was '
                         'missing', sysmeta.get(SM_VOLUME),
                         before or '(none recorded)', instance=instance)
                fixed.append(instance.uuid)
        return fixed

    def _attach(self, context, instance, volume_id):
        try:
            volume = self._volume_api.get(context, volume_id)
        except nova_exception.VolumeNotFound:
            raise self._unacceptable(
                instance, 'origin volume %s was not found (it must exist '
                'and be visible to project %s)'
                % (volume_id, instance.project_id))
        ok, reason = self._cacheops.check_origin(volume)
        if not ok:
            raise self._unacceptable(
                instance, 'origin volume %s cannot be shared: %s'
                % (volume_id, reason))
        try:
            attachment = self._attachment_create(context, volume_id,
                                                 instance)
        except nova_exception.VolumeNotFound:
            raise self._unacceptable(
                instance, 'origin volume %s was not found' % volume_id)
        # Recorded at once: a failure from here on is cleaned up by
        # release(), which reads it.
        instance.system_metadata.update({
            SM_ATTACHMENT: attachment['id'], SM_VOLUME: volume_id,
            SM_HOST: self._host})
        instance.save()
        self._volume_api.attachment_complete(context, attachment['id'])
        LOG.debug('Attached origin %s (attachment %s)', volume_id,
                  attachment['id'], instance=instance)
        return attachment['connection_info']

    def _attachment_create(self, context, volume_id, instance):
        """Cinder's attachment_create, retried while another one is busy.

        Cinder reserves a multiattach volume only in status available,
        in-use or downloading: while another server's attachment is
        between create and complete the volume is ``reserved`` or
        ``attaching`` and a new attachment fails with HTTP 400 (seen with
        ``server create --min 4`` on a real Cinder 29). Servers booting
        together on one origin wait their turn.
        """
        for attempt in range(1, ATTACH_ATTEMPTS + 1):
            try:
                return self._volume_api.attachment_create(
                    context, volume_id, instance.uuid,
                    connector=self._connector(instance))
            except nova_exception.InvalidInput as e:
                if attempt == ATTACH_ATTEMPTS or \
                        not _BUSY_RE.search(str(e)):
                    raise
                LOG.debug('Origin %s is busy with another attachment '
                          '(attempt %d): %s', volume_id, attempt, e,
                          instance=instance)
                _sleep(ATTACH_RETRY_DELAY * (1 + random.random()))

    @staticmethod
    def _unacceptable(instance, reason):
        return nova_exception.ImageUnacceptable(image_id=instance.image_ref,
                                                reason=reason)

    def _ensure_origin(self, context, connection_info, instance, image):
        """Where the cache reads the origin; connect it if needed."""
        cached = self._find(image)
        known = self._connected.get(image)
        if cached is not None and cached.vms and known is not None:
            return known
        self._connect(context, connection_info, instance)
        location = self._cacheops.origin_location(connection_info)
        if not location:
            raise exception.InvalidLocation(
                location=location,
                reason='the volume driver gave no device_path')
        self._connected[image] = location
        if cached is not None and cached.vms and (
                cached.location != location_mod.parse(location).url):
            # Connected at another path after a host reboot. (An idle
            # cache is re-opened by SnapshotOps.ensure_disk.)
            self._cacheops.engine.reparent(image, location)
        return location

    def _find(self, image):
        return self._cacheops.engine.get_image(image)

    # -- delete, failed spawn, reschedule, evacuated away ---------------

    def moved_away(self, instance):
        """Whether ``instance`` now belongs to another host.

        True when the source host cleans up a server evacuated from it
        (Nova sets ``instance.host`` to the destination once the rebuild
        there is done).
        """
        return instance.host not in (None, self._host)

    def release(self, context, instance):
        """Destroy the overlay, detach, and disconnect if last on the host.

        Idempotent; a server that never got an attachment only loses its
        overlay, if any.
        """
        sysmeta = system_metadata(instance)
        volume_id = sysmeta.get(SM_VOLUME)
        attachment_id = sysmeta.get(SM_ATTACHMENT)
        if sysmeta.get(SM_HOST) not in (None, self._host):
            # Another host's attachment (evacuated server): that host's
            # cleanup does not own it either; prepare() there replaced it.
            attachment_id = None
        if volume_id is None:
            self._snapshotops.destroy_disk(instance)
            return
        image = self._cacheops.image_name(volume_id)
        with lockutils.lock('fastboot-' + image):
            self._snapshotops.destroy_disk(instance)
            cached = self._find(image)
            if cached is not None and not cached.vms:
                self._cacheops.remove_if_idle(image)
            if attachment_id and (cached is None or not cached.vms):
                # The last server of this host: its attachment was
                # connected, or this one's was (a create that failed).
                location = (cached.location if cached is not None
                            else self._connected.get(image))
                self._disconnect_origin(context, instance, attachment_id,
                                        location, image)
        if attachment_id:
            self._delete_attachment(context, instance, attachment_id)

    def _disconnect_origin(self, context, instance, attachment_id,
                           location, image):
        try:
            connection_info = self._volume_api.attachment_get(
                context, attachment_id)['connection_info']
        except nova_exception.VolumeAttachmentNotFound:
            LOG.warning('Attachment %s is gone; origin of %s stays '
                        'connected', attachment_id, image, instance=instance)
            return
        if location:
            connection_info.setdefault('data', {})['device_path'] = location
        self._disconnect(context, connection_info, instance)
        self._connected.pop(image, None)
        LOG.info('Disconnected origin of cache %s: no server of this host '
                 'uses it', image, instance=instance)

    def _delete_attachment(self, context, instance, attachment_id):
        try:
            self._volume_api.attachment_delete(context, attachment_id)
        except nova_exception.VolumeAttachmentNotFound:
            pass
        for key in (SM_ATTACHMENT, SM_VOLUME, SM_HOST):
            instance.system_metadata.pop(key, None)
        try:
            instance.save()
        except nova_exception.InstanceNotFound:
            pass
        LOG.debug('Deleted attachment %s', attachment_id, instance=instance)

    # -- libvirt -------------------------------------------------------

    def disk_path(self, instance):
        """The server's overlay, or None when it has none."""
        return self.overlay_path(instance.uuid)

    def overlay_path(self, instance_uuid):
        """The overlay of server ``instance_uuid``, or None.

        One disk's cost (``engine.get_disk``), never a listing: the
        resource tracker asks once per domain.
        """
        disk = self._cacheops.engine.get_disk(
            snapshotops.SnapshotOps.disk_name(instance_uuid))
        return disk.path if disk is not None else None

    def overlay_paths(self):
        return {disk.path for disk in self._cacheops.engine.list()}
