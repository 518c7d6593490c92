"""fastboot-runner: turns persisted batches into servers.

Several runners may run, on one machine or many; they share the
coordinator database and tooz backend. Each pass takes the batches with
work left, highest priority first (HA restarts, then retries, then user
requests; oVirt's "mass VMs run"), and works on each one it can take the
tooz lock of (``batch-<id>``); a batch whose lock is held is another
runner's. A runner that dies drops its lock (tooz's file, etcd or
ZooKeeper locks go with the process or its session) and the next pass of
another runner resumes the batch.

Every step is idempotent and recorded before the next starts, so a
resumed batch never repeats what was done:

1. origin: the source's shared origin volume (multiattach type,
   ``fastboot_cacheable=true``, read-only) and its fastboot image, made
   once per source and reused by its later batches;
2. slots: one ``batch_servers`` row per server;
3. requests: slots are sent to Nova in bulks (one request, ``min_count =
   max_count``, unless ``[batches] bulk_size``); the bulk's server name is
   written to its slots *before* the request is sent, so after a crash, a
   timeout or a 5xx the runner first looks for servers of that name and
   only re-sends when Nova has none: no server is created twice;
4. polling: ACTIVE, or ERROR: the server is deleted and its slot re-sent,
   up to ``[batches] max_server_retries`` times, then its fault is kept;
5. the batch ends ACTIVE (all servers), PARTIAL (some) or ERROR (none),
   with the faults per server.

``DELETE`` marks a batch DELETING; the runner deletes its servers and,
once Nova has deleted them all, its trust and with ``purge`` the origin
if no other batch uses it.
"""

import json
import logging
import socket
import time
import uuid

from fastboot_nova.coordinator.batches import cloud as cloud_mod
from fastboot_nova.coordinator.db import batch_models as bm
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator.db import models
from fastboot_nova.coordinator import exception

LOG = logging.getLogger(__name__)


class BatchFailed(Exception):
    """The batch cannot go on; the message is its fault."""


class Runner:

    def __init__(self, conf, db, coordination, clouds, ctx, runner_id=None,
                 sleep=time.sleep, clock=time.monotonic):
        self.conf = conf.batches
        self.queries = batch_db.BatchQueries(db)
        self.coordination = coordination
        self.clouds = clouds
        self.ctx = ctx
        self.id = runner_id or '%s-%s' % (socket.gethostname(),
                                          uuid.uuid4().hex[:8])
        self.sleep = sleep
        self.clock = clock
        # batch id -> cloud: its keystoneauth session keeps the trust's
        # token until it nears expiry, instead of one Keystone token
        # (and endpoint discovery) per batch per pass.
        self._clouds = {}

    # -- the loop -------------------------------------------------------------

    def run_once(self):
        """One pass over the batches with work; returns how many moved."""
        worked = 0
        work = self.queries.work(self.ctx)
        # Ended batches, and those another runner finished, are not work.
        for batch_id in set(self._clouds) - set(work):
            del self._clouds[batch_id]
        for batch_id in work:
            with self.coordination.try_lock('batch-%s' % batch_id) as mine:
                if not mine:
                    continue
                try:
                    self.step(batch_id)
                    worked += 1
                except (exception.CloudUnavailable,
                        exception.LockTimeout) as e:
                    # Retried at the next pass; the state says where.
                    LOG.warning('Batch %s: %s', batch_id, e)
        return worked

    def run_forever(self, stop):
        LOG.info('fastboot-runner %s started', self.id)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                LOG.exception('Runner pass failed')
            stop.wait(self.conf.poll_interval)

    def step(self, batch_id):
        """Move one batch as far as it goes without waiting long."""
        batch = self.queries.get(self.ctx, batch_id)
        if batch.runner != self.id:
            self.queries.update(self.ctx, batch_id, runner=self.id)
        cloud = self._clouds.get(batch_id)
        if cloud is None:
            cloud = self._clouds[batch_id] = self.clouds.for_trust(
                batch.trust_id)
        if batch.state == 'DELETING':
            return self._delete(batch, cloud)
        try:
            if batch.state in ('PENDING', 'PREPARING'):
                self._prepare(batch, cloud)
                batch = self.queries.get(self.ctx, batch_id)
            self._build(batch, cloud)
        except BatchFailed as e:
            LOG.warning('Batch %s failed: %s', batch_id, e)
            self.queries.update(self.ctx, batch_id, state='ERROR',
                                fault=str(e))

    # -- bounded retries of cloud calls ---------------------------------------

    def _retry(self, func, *args, **kwargs):
        delay = self.conf.retry_interval
        for attempt in range(self.conf.cloud_retries + 1):
            try:
                return func(*args, **kwargs)
            except exception.CloudUnavailable:
                if attempt == self.conf.cloud_retries:
                    raise
                self.sleep(delay)
                delay *= 2

    # -- 1. origin ------------------------------------------------------------

    def _prepare(self, batch, cloud):
        if batch.state == 'PENDING':
            self.queries.update(self.ctx, batch.id, state='PREPARING')
        # Batches of one source share its origin: one runner makes it.
        with self.coordination.lock('origin-%s' % batch.source_id):
            origin = self._origin(batch, cloud)
        self.queries.ensure_slots(self.ctx, batch.id, batch.count)
        self.queries.update(self.ctx, batch.id, state='BUILDING',
                            origin_volume_id=origin.volume_id,
                            image_id=origin.image_id)
        self.queries.add_event(self.ctx, batch.id, None, 'origin_ready',
                               detail={'volume': origin.volume_id,
                                       'image': origin.image_id})

    def _origin(self, batch, cloud):
        origin = self.queries.origin_get(self.ctx, batch.source_id)
        if origin is None or not origin.volume_id:
            source = self._retry(cloud.get_source, batch.source_type,
                                 batch.source_id)
            if source['status'] != 'available':
                raise BatchFailed('%s %s is %s, not available' % (
                    batch.source_type, batch.source_id, source['status']))
            volume_id = self._retry(
                cloud.create_origin_volume, batch.source_type,
                batch.source_id, source['size'],
                'fastboot-origin-%s' % batch.source_id)
            origin = self.queries.origin_put(self.ctx, batch.project_id,
                                             batch.source_id,
                                             volume_id=volume_id)
        self._wait_volume(cloud, origin)
        if not origin.image_id:
            self._retry(cloud.set_volume_readonly, origin.volume_id)
            image_id = self._retry(cloud.create_image, origin.volume_id,
                                   'fastboot-%s' % batch.source_id)
            origin = self.queries.origin_put(self.ctx, batch.project_id,
                                             batch.source_id,
                                             image_id=image_id)
        return origin

    def _wait_volume(self, cloud, origin):
        deadline = self.clock() + self.conf.origin_timeout
        # A clone of a snapshot is ready in about a second on RBD: look
        # again soon first, then every poll_interval.
        delay = min(0.25, self.conf.poll_interval)
        while True:
            volume = self._retry(cloud.get_volume, origin.volume_id)
            status = volume['status'] if volume else 'deleted'
            if status in ('available', 'in-use'):
                return
            if status != 'creating' or self.clock() > deadline:
                # A broken origin is of no use to any batch: remove it.
                if volume:
                    self._retry(cloud.delete_volume, origin.volume_id)
                self.queries.origin_delete(self.ctx, origin.source_id)
                raise BatchFailed('origin volume %s is %s' % (
                    origin.volume_id, status if status != 'creating'
                    else 'still creating after %ds' %
                    self.conf.origin_timeout))
            self.sleep(delay)
            delay = min(delay * 2, self.conf.poll_interval)

    # -- 2-5. servers ---------------------------------------------------------

    def _build(self, batch, cloud):
        by_request = {}
        for slot in batch.servers:
            if slot.request_name and not slot.server_id and \
                    slot.state == 'BUILDING':
                by_request.setdefault(slot.request_name, []).append(slot)
        for name, slots in by_request.items():
            self._collect(batch, cloud, name, slots)
        batch = self.queries.get(self.ctx, batch.id)
        pending = [s for s in batch.servers if s.state == 'PENDING']
        if pending:
            self._send(batch, cloud, pending)
            batch = self.queries.get(self.ctx, batch.id)
        building = [s for s in batch.servers
                    if s.state == 'BUILDING' and s.server_id]
        for slot, server in self._look(cloud, building):
            self._poll(batch, cloud, slot, server)
        self._finish(self.queries.get(self.ctx, batch.id))

    def _look(self, cloud, slots):
        """Each slot with its server: one list per request a pass.

        Not a GET per server: a batch of 500 in one request is one call.
        """
        by_request = {}
        for slot in slots:
            by_request.setdefault(slot.request_name, []).append(slot)
        for name, group in by_request.items():
            listed = {}
            if name is not None:
                listed = {s['id']: s
                          for s in self._retry(cloud.find_servers, name)}
            for slot in group:
                server = listed.get(slot.server_id)
                if server is None:
                    # Not listed (or no request name): ask for it by id
                    # before calling it gone.
                    server = self._retry(cloud.get_server, slot.server_id)
                yield slot, server

    def _bulks(self, slots):
        size = self.conf.bulk_size or len(slots)
        return [slots[i:i + size] for i in range(0, len(slots), size)]

    def _send(self, batch, cloud, pending):
        flavor = self._retry(cloud.get_flavor, batch.flavor)
        request = batch_request(batch)
        for bulk in self._bulks(pending):
            # Unique per request: a retry never matches an older one.
            name = '%s-%s-%s' % (batch.name, batch.id[:8],
                                 uuid.uuid4().hex[:6])
            for slot in bulk:
                # Written before the request: see the module docstring.
                self.queries.update_server(self.ctx, batch.id, slot.index,
                                           state='BUILDING',
                                           request_name=name)
            self._create(batch, cloud, name, bulk, flavor, request)

    def _create(self, batch, cloud, name, bulk, flavor, request):
        """Send one bulk, retrying 5xx/timeouts, never creating twice."""
        for attempt in range(self.conf.cloud_retries + 1):
            sent_at = models.utcnow()
            try:
                cloud.create_servers(
                    name, batch.image_id, flavor['id'], len(bulk),
                    request.get('networks', 'auto'),
                    key_name=request.get('key_name'),
                    availability_zone=request.get('availability_zone'),
                    metadata={cloud_mod.BATCH_METADATA: batch.id})
                break
            except exception.CloudUnavailable as e:
                # A timeout may have created them anyway: look first.
                found = self._retry(cloud.find_servers, name)
                if found:
                    break
                if attempt == self.conf.cloud_retries:
                    for slot in bulk:
                        self.queries.update_server(
                            self.ctx, batch.id, slot.index, state='ERROR',
                            fault='Nova did not create the server: %s' % e)
                    return
                self.sleep(self.conf.retry_interval * 2 ** attempt)
        self._collect(batch, cloud, name, bulk, sent_at=sent_at)

    def _collect(self, batch, cloud, name, slots, sent_at=None):
        """Match Nova's servers named after a request to its slots.

        ``sent_at``: when this runner sent the request, the time of the
        servers' ``requested`` phase (Nova's API time then counts in the
        phases after it); None when resuming, where it is not known.
        """
        found = self._retry(cloud.find_servers, name)
        slots = sorted(slots, key=lambda s: s.index)
        if not found and sent_at is None:
            # Recorded but never reached Nova (the runner died before
            # sending): send it now under the same name.
            return self._create(batch, cloud, name, slots,
                                self._retry(cloud.get_flavor, batch.flavor),
                                batch_request(batch))
        for server in found:
            pos = cloud_mod.server_index(name, server['name'], len(slots))
            if pos is None:
                continue
            slot = slots[pos]
            self.queries.update_server(self.ctx, batch.id, slot.index,
                                       server_id=server['id'])
            self.queries.add_event(self.ctx, batch.id, server['id'],
                                   'requested', at=sent_at)

    def _poll(self, batch, cloud, slot, server):
        if server is None:
            return self._server_failed(batch, cloud, slot,
                                       'deleted outside the batch')
        if server['status'] == 'ACTIVE':
            self.queries.update_server(self.ctx, batch.id, slot.index,
                                       state='ACTIVE', host=server['host'])
            self.queries.add_event(self.ctx, batch.id, slot.server_id,
                                   'ACTIVE')
        elif server['status'] == 'ERROR':
            self._server_failed(batch, cloud, slot,
                                server['fault'] or 'ERROR')
        elif ((models.utcnow() - (slot.updated_at or slot.created_at))
              .total_seconds() > self.conf.build_timeout):
            self._server_failed(batch, cloud, slot,
                                'still %s after %ds' % (
                                    server['status'],
                                    self.conf.build_timeout))

    def _server_failed(self, batch, cloud, slot, fault):
        self.queries.add_event(self.ctx, batch.id, slot.server_id, 'ERROR',
                               detail={'fault': fault})
        # A failed server is removed: its fault stays in the slot.
        self._retry(cloud.delete_server, slot.server_id)
        attempts = slot.attempts + 1
        if attempts <= self.conf.max_server_retries:
            LOG.info('Batch %s server %d: %s; retry %d', batch.id,
                     slot.index, fault, attempts)
            self.queries.update_server(self.ctx, batch.id, slot.index,
                                       state='PENDING', server_id=None,
                                       request_name=None, attempts=attempts,
                                       fault=fault)
            if batch.priority < bm.PRIORITIES['retry']:
                self.queries.update(self.ctx, batch.id,
                                    priority=bm.PRIORITIES['retry'])
        else:
            self.queries.update_server(self.ctx, batch.id, slot.index,
                                       state='ERROR', attempts=attempts,
                                       fault=fault)

    def _finish(self, batch):
        states = [s.state for s in batch.servers]
        if any(s in ('PENDING', 'BUILDING') for s in states):
            return
        active = states.count('ACTIVE')
        if active == len(states):
            state, fault = 'ACTIVE', None
        else:
            state = 'PARTIAL' if active else 'ERROR'
            fault = '%d of %d servers failed' % (len(states) - active,
                                                 len(states))
        self.queries.update(self.ctx, batch.id, state=state, fault=fault)
        LOG.info('Batch %s: %s (%d/%d ACTIVE)', batch.id, state, active,
                 len(states))

    # -- deletion -------------------------------------------------------------

    def _delete(self, batch, cloud):
        """Delete the servers; once Nova has, the trust and the origin.

        Nova deletes a server asynchronously, and while it does the
        compute calls Cinder (detach) and Neutron with the token of the
        request, which the trust issued: deleting the trust before the
        servers are gone fails those calls with 401 and leaves the
        servers in ERROR (seen on ministack). The origin volume can be
        deleted only once every server has detached it. So each pass
        asks for the deletion of the servers still there (again when
        Nova's deletion failed) and the batch ends at the pass that finds
        none.
        """
        left = 0
        for slot in batch.servers:
            if slot.state == 'DELETED':
                continue
            if slot.server_id:
                servers = [self._retry(cloud.get_server, slot.server_id)]
            elif slot.request_name and slot.state == 'BUILDING':
                # Sent but never matched: by name.
                servers = self._retry(cloud.find_servers, slot.request_name)
            else:
                servers = []
            servers = [s for s in servers if s is not None]
            for server in servers:
                if server.get('task_state') != 'deleting':
                    self._retry(cloud.delete_server, server['id'])
            if servers:
                left += 1
            else:
                self.queries.update_server(self.ctx, batch.id, slot.index,
                                           state='DELETED')
        if left:
            LOG.debug('Batch %s: %d servers still being deleted', batch.id,
                      left)
            return
        if batch.purge and not self.queries.origin_users(
                self.ctx, batch.source_id, but=batch.id):
            origin = self.queries.origin_get(self.ctx, batch.source_id)
            if origin is not None:
                if origin.image_id:
                    self._retry(cloud.delete_image, origin.image_id)
                if origin.volume_id:
                    self._retry(cloud.delete_volume, origin.volume_id)
                self.queries.origin_delete(self.ctx, batch.source_id)
        self._retry(cloud.delete_trust, batch.trust_id)
        self.queries.update(self.ctx, batch.id, state='DELETED')


def batch_request(batch):
    return json.loads(batch.request)
