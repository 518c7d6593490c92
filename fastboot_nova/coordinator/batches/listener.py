"""``fastboot-notification-listener``: Nova's and fastboot's notifications
into the batch timeline.

An oslo.messaging notification listener on the versioned notification
topics (``[batches] notification_topics``) of Nova's exchange
(``[batches] notification_exchange``), in the pool
``fastboot-batches`` so that it takes its own copy of each message and
never steals Nova's consumers'. Nova's ``instance.create.start`` (the
compute host took the server: it was scheduled), ``.end`` (ACTIVE) and
``.error`` and FastBootDriver's ``fastboot.*`` events
(:mod:`fastboot_nova.virt.notifications`) become ``batch_events`` rows of
the batch that owns the server; notifications about other servers are
dropped at the cost of one indexed lookup.

A compute can take a server before the runner has listed the servers
Nova made and recorded their ids (on ministack ``instance.create.start``
came 0.1 s after the request; under load, before the runner knew the id,
and the phase was lost). Nova's payloads carry the server's metadata,
where the runner puts ``fastboot_batch``, and FastBootDriver's payloads
carry it as ``batch`` with the server's ``project_id``; the batch named
is trusted only when it belongs to the server's project: metadata is the
user's to write.
"""

import datetime
import logging
import sys
import threading

from oslo_config import cfg
import oslo_messaging

from fastboot_nova.conf import batches as conf_batches
from fastboot_nova.coordinator.batches import cloud
from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator import exception
from fastboot_nova.virt import notifications as fb_notifications

LOG = logging.getLogger(__name__)

POOL = 'fastboot-batches'

#: event type -> timeline phase.
PHASES = {
    'instance.create.start': 'scheduled',
    fb_notifications.CACHE_ATTACH_START: 'block_device',
    fb_notifications.CACHE_ATTACH_END: 'cache_attached',
    fb_notifications.OVERLAY_CREATED: 'overlay_created',
    'instance.create.end': 'ACTIVE',
    'instance.create.error': 'ERROR',
}

#: Kept for callers of this module; the options live in conf/batches.py.
listener_opts = conf_batches.listener_opts


def register_opts(conf):
    conf.register_opts(listener_opts, group=conf_batches.GROUP_NAME)


def _instance(payload):
    """The server uuid of a Nova versioned payload or a fastboot one."""
    if not isinstance(payload, dict):
        return None
    if 'instance_uuid' in payload:
        return payload['instance_uuid']
    data = payload.get('nova_object.data')
    if isinstance(data, dict):
        return data.get('uuid')
    return None


def _nova_data(payload):
    data = payload.get('nova_object.data') if isinstance(payload,
                                                         dict) else None
    return data if isinstance(data, dict) else {}


def _detail(event_type, payload):
    detail = {}
    if event_type.startswith('fastboot.'):
        for key in ('bytes', 'path', 'host', 'volume_id'):
            if payload.get(key) is not None:
                detail[key] = payload[key]
    else:
        data = _nova_data(payload)
        if data.get('host'):
            detail['host'] = data['host']
        fault = data.get('fault')
        if isinstance(fault, dict):
            fault = (fault.get('nova_object.data') or {}).get(
                'exception_message')
            if fault:
                detail['fault'] = fault
    return detail or None


def _timestamp(metadata):
    value = (metadata or {}).get('timestamp')
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value).replace(tzinfo=None)
    except (TypeError, ValueError):
        return None


class TimelineEndpoint:
    """Records the phases of batch servers; ignores everything else."""

    filter_rule = oslo_messaging.NotificationFilter(
        event_type=r'^(instance\.create\.|fastboot\.)')

    def __init__(self, queries, ctx):
        self.queries = queries
        self.ctx = ctx

    def _record(self, event_type, payload, metadata):
        phase = PHASES.get(event_type)
        server_id = _instance(payload)
        if phase is None or not server_id:
            return oslo_messaging.NotificationResult.HANDLED
        slot = self.queries.server_by_nova_id(self.ctx, server_id)
        batch_id = slot.batch_id if slot else self._batch_of(payload)
        if batch_id is None:
            return oslo_messaging.NotificationResult.HANDLED
        self.queries.add_event(self.ctx, batch_id, server_id, phase,
                               at=_timestamp(metadata),
                               detail=_detail(event_type, payload))
        return oslo_messaging.NotificationResult.HANDLED

    def _batch_of(self, payload):
        """The batch the server's ``fastboot_batch`` metadata names.

        None unless that batch is of the server's own project.
        """
        if 'instance_uuid' in payload:  # FastBootDriver's
            batch_id = payload.get('batch')
            project_id = payload.get('project_id')
        else:
            data = _nova_data(payload)
            metadata = data.get('metadata')
            batch_id = (metadata.get(cloud.BATCH_METADATA)
                        if isinstance(metadata, dict) else None)
            project_id = data.get('tenant_id')
        if not isinstance(batch_id, str) or not project_id:
            return None
        try:
            batch = self.queries.get(self.ctx, batch_id, project_id)
        except exception.BatchNotFound:
            return None
        return batch.id

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._record(event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._record(event_type, payload, metadata)


def make_listener(conf, transport, db):
    register_opts(conf)
    # On Nova's exchange: the listener's own control_exchange
    # ("openstack") would bind its queue where Nova never publishes.
    targets = [oslo_messaging.Target(
        exchange=conf.batches.notification_exchange, topic=t)
        for t in conf.batches.notification_topics]
    endpoint = TimelineEndpoint(batch_db.BatchQueries(db),
                                context.admin_context())
    return oslo_messaging.get_notification_listener(
        transport, targets, [endpoint], executor='threading', pool=POOL)


def main(argv=None):
    conf = cfg.ConfigOpts()
    register_opts(conf)
    config.parse_args(sys.argv[1:] if argv is None else argv, conf=conf,
                      prog='fastboot-notification-listener')
    transport = oslo_messaging.get_notification_transport(conf)
    db = db_api.Database(conf)
    listener = make_listener(conf, transport, db)
    stop = threading.Event()
    import signal

    def _stop(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    listener.start()
    LOG.info('fastboot-notification-listener started')
    stop.wait()
    listener.stop()
    listener.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
