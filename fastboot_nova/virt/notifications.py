"""Notifications FastBootDriver emits for the boot-batch timeline.

Three event types, on the topics of Nova's versioned notifications
(``[notifications] versioned_notifications_topics``) so that one
listener (``fastboot-notification-listener``) sees both Nova's phases and
these, publisher ``fastboot.<host>``:

* ``fastboot.cache.attach.start`` -- the origin is being connected and
  cached on this host for the server;
* ``fastboot.cache.attach.end`` -- done; ``bytes`` is what the host's
  cache had fetched so far when known;
* ``fastboot.overlay.create.end`` -- the server's copy-on-write overlay
  exists; ``path`` says where.

Every payload carries ``instance_uuid``, ``volume_id`` and
``project_id``; ``batch`` too when the server's metadata has
``fastboot_batch`` (:data:`BATCH_METADATA`): the compute can get this far
before the batch runner has recorded the server's id, and the listener
then attributes the event by it, as it does Nova's. Sending never
fails a boot: errors are logged and dropped. Without a notification
driver configured (``[oslo_messaging_notifications] driver``) nothing is
sent, as for Nova's own notifications.
"""

import logging

import oslo_messaging

LOG = logging.getLogger(__name__)

CACHE_ATTACH_START = 'fastboot.cache.attach.start'
CACHE_ATTACH_END = 'fastboot.cache.attach.end'
OVERLAY_CREATED = 'fastboot.overlay.create.end'
DEFAULT_TOPICS = ['versioned_notifications']

#: The server metadata key naming the batch that created a server (the
#: batch runner sets it).
BATCH_METADATA = 'fastboot_batch'


def server_fields(instance):
    """What the listener attributes a server's events by."""
    fields = {'project_id': instance.project_id}
    # Only what the compute has loaded: never a lazy load for this.
    if instance.obj_attr_is_set('metadata'):
        batch = (instance.metadata or {}).get(BATCH_METADATA)
        if batch:
            fields['batch'] = batch
    return fields


class Emitter:

    def __init__(self, conf, host, transport=None, topics=None):
        self._conf = conf
        self._host = host
        self._transport = transport
        self._topics = topics
        self._notifier = None

    def _get(self):
        if self._notifier is None:
            transport = (self._transport or
                         oslo_messaging.get_notification_transport(
                             self._conf))
            topics = self._topics or DEFAULT_TOPICS
            if not self._topics and 'notifications' in self._conf:
                topics = (self._conf.notifications
                          .versioned_notifications_topics or topics)
            self._notifier = oslo_messaging.Notifier(
                transport, publisher_id='fastboot.%s' % self._host,
                topics=topics)
        return self._notifier

    def emit(self, context, event_type, instance_uuid, volume_id, **extra):
        payload = dict(extra, instance_uuid=instance_uuid,
                       volume_id=volume_id, host=self._host)
        try:
            self._get().info(_ctxt(context), event_type, payload)
        except Exception:
            LOG.warning('Could not send %s for %s', event_type,
                        instance_uuid, exc_info=True)


def _ctxt(context):
    to_dict = getattr(context, 'to_dict', None)
    return to_dict() if to_dict else {}


class NullEmitter:
    """Sends nothing: the default until the driver sets an Emitter."""

    def emit(self, context, event_type, instance_uuid, volume_id, **extra):
        pass


NULL = NullEmitter()
