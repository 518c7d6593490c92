"""``/v1/batches``: boot N servers from one volume snapshot, as one call.

``POST`` answers as soon as the request is checked and persisted (the
expedited start of CloudStack's async jobs): the pre-flight checks that
need no waiting (the schema, the count against ``[batches] max_count``
and the project's instance quota, the source exists for the user and is
available, the flavor fits the volume), a Keystone trust for the runner,
one row; ``fastboot-runner`` does the rest. ``Idempotency-Key`` makes a
retried POST safe: the same key and body give the same batch (200 instead
of 202), another body 409.
"""

import hashlib
import json
import re

from fastboot_nova.coordinator.api import util
from fastboot_nova.coordinator import batch_policy as bp
from fastboot_nova.coordinator.batches import clients
from fastboot_nova.coordinator.batches import timeline
from fastboot_nova.coordinator.db import batch_models as bm
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator import exception

UUID = {'type': 'string',
        'pattern': '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                   '[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$'}
# Nova's server name: printable, no leading/trailing space.
SERVER_NAME = {'type': 'string', 'minLength': 1, 'maxLength': 200,
               'pattern': r'^[A-Za-z0-9][A-Za-z0-9._-]*$'}
KEY_HEADER = 'Idempotency-Key'
KEY_PATTERN = r'^[\x21-\x7e]{1,255}$'

CREATE = {
    'type': 'object',
    'properties': {
        'source': {
            'type': 'object',
            'properties': {'volume_snapshot_id': UUID, 'volume_id': UUID},
            'minProperties': 1, 'maxProperties': 1,
            'additionalProperties': False,
        },
        'count': {'type': 'integer', 'minimum': 1},
        'flavor': {'type': 'string', 'minLength': 1, 'maxLength': 255,
                   'pattern': r'^\S+$'},
        'networks': {'anyOf': [
            {'enum': ['none', 'auto']},
            {'type': 'array', 'minItems': 1, 'maxItems': 16,
             'items': {'type': 'object',
                       'properties': {'uuid': UUID},
                       'required': ['uuid'],
                       'additionalProperties': False}}]},
        'name': SERVER_NAME,
        'key_name': {'type': 'string', 'minLength': 1, 'maxLength': 255,
                     'pattern': r'^[\x21-\x7e]+$'},
        'availability_zone': {'type': 'string', 'minLength': 1,
                              'maxLength': 255, 'pattern': r'^\S+$'},
        'priority': {'enum': sorted(bm.PRIORITIES)},
    },
    'required': ['source', 'count', 'flavor', 'name'],
    'additionalProperties': False,
}

LIST_QUERY = {
    'type': 'object',
    'properties': {'all_projects': {'enum': ['true', 'false']}},
    'additionalProperties': False,
}
DELETE_QUERY = {
    'type': 'object',
    'properties': {'purge': {'enum': ['true', 'false']}},
    'additionalProperties': False,
}
PATH = UUID
PRIORITY_NAMES = {v: k for k, v in bm.PRIORITIES.items()}


class BatchService:
    """What the batch handlers share (``state.batches``)."""

    def __init__(self, conf, db):
        self.conf = conf
        self.queries = batch_db.BatchQueries(db)
        self.clouds = clients.CloudFactory(conf)


def _context(req, state):
    ctx = util.context(req)
    if not ctx.project_id:
        # shared_secret mode has no users: batches are made for users.
        raise exception.Forbidden(
            reason='Boot batches need a project-scoped Keystone token '
                   '([coordinator] auth_strategy = keystone).')
    return ctx


def _authorize(state, ctx, action):
    state.authorizer.authorize(ctx, action, {'project_id': ctx.project_id})


def request_hash(body):
    canonical = json.dumps(body, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(canonical.encode('utf-8')).hexdigest()


def _idempotency_key(req):
    key = req.headers.get(KEY_HEADER)
    if key is None:
        raise exception.BadRequest(
            reason='The %s header is required: a retried POST with the '
                   'same key returns the same batch.' % KEY_HEADER)
    if not re.match(KEY_PATTERN, key):
        raise exception.BadRequest(
            reason='Invalid header %s: 1 to 255 printable ASCII characters '
                   'without spaces.' % KEY_HEADER)
    return key


def _fields(body):
    (source_type, source_id), = body['source'].items()
    networks = body.get('networks', 'auto')
    return {'name': body['name'],
            'source_type': ('snapshot' if source_type == 'volume_snapshot_id'
                            else 'volume'),
            'source_id': source_id,
            'count': body['count'],
            'flavor': body['flavor'],
            'priority': bm.PRIORITIES[body.get('priority', 'user')]}, networks


def preflight(state, ctx, fields):
    """Every check that is quick: raise a 4xx before anything is made."""
    max_count = state.conf.batches.max_count
    if fields['count'] > max_count:
        raise exception.BadRequest(
            reason='count %d is more than [batches] max_count %d.' % (
                fields['count'], max_count))
    cloud = state.batches.clouds.for_user(ctx)
    source = cloud.get_source(fields['source_type'], fields['source_id'])
    if source['status'] != 'available':
        raise exception.SourceNotAvailable(
            kind=fields['source_type'].capitalize(), id=source['id'],
            status=source['status'])
    flavor = cloud.get_flavor(fields['flavor'])
    if flavor['disk'] and flavor['disk'] < source['size']:
        raise exception.FlavorTooSmall(flavor=fields['flavor'],
                                       disk=flavor['disk'],
                                       size=source['size'])
    left = cloud.instances_left()
    if left is not None and fields['count'] > left:
        raise exception.OverQuota(count=fields['count'], left=left)
    return cloud


def _location(req, batch_id):
    return req.host_url + '/v1/batches/' + batch_id


@util.validated(body=CREATE)
def create(req, state, body, query):
    ctx = _context(req, state)
    _authorize(state, ctx, bp.BATCHES_CREATE)
    if body.get('priority', 'user') != 'user':
        _authorize(state, ctx, bp.BATCHES_PRIORITY)
    key = _idempotency_key(req)
    digest = request_hash(body)
    queries = state.batches.queries
    existing = queries.get_by_key(ctx, ctx.project_id, key)
    if existing is not None:
        if existing.request_hash != digest:
            raise exception.IdempotencyConflict(key=key)
        return _accepted(req, existing, status=200)
    fields, _networks = _fields(body)
    cloud = preflight(state, ctx, fields)
    fields['trust_id'] = cloud.create_trust()
    try:
        batch, created = queries.create(ctx, ctx.project_id, ctx.user_id,
                                        key, digest, body, fields)
    except Exception:
        cloud.delete_trust(fields['trust_id'])
        raise
    if not created:
        # A concurrent POST with the same key won: ours is not needed.
        cloud.delete_trust(fields['trust_id'])
    return _accepted(req, batch, status=202 if created else 200)


def _accepted(req, batch, status):
    return util.json_response({'batch': view(req, batch)}, status=status,
                              headers={'Location': _location(req, batch.id)})


def _time(value):
    return value.isoformat() + 'Z' if value else None


def view(req, batch, servers=True):
    counts = {}
    for server in batch.servers:
        counts[server.state] = counts.get(server.state, 0) + 1
    data = {
        'id': batch.id,
        'name': batch.name,
        'state': batch.state,
        'project_id': batch.project_id,
        'user_id': batch.user_id,
        'source': {'type': batch.source_type, 'id': batch.source_id},
        'count': batch.count,
        'flavor': batch.flavor,
        'priority': PRIORITY_NAMES.get(batch.priority, batch.priority),
        'origin_volume_id': batch.origin_volume_id,
        'image_id': batch.image_id,
        'fault': batch.fault,
        'server_states': counts,
        'created_at': _time(batch.created_at),
        'updated_at': _time(batch.updated_at),
        'links': [{'rel': 'self', 'href': _location(req, batch.id)}],
    }
    if servers:
        data['servers'] = [{'index': s.index, 'id': s.server_id,
                            'state': s.state, 'attempts': s.attempts,
                            'host': s.host, 'fault': s.fault}
                           for s in batch.servers]
    return data


@util.validated(query=LIST_QUERY)
def list_batches(req, state, body, query):
    ctx = _context(req, state)
    _authorize(state, ctx, bp.BATCHES_READ)
    project = ctx.project_id
    if query.get('all_projects') == 'true':
        _authorize(state, ctx, bp.BATCHES_ALL_PROJECTS)
        project = None
    batches = state.batches.queries.list(ctx, project)
    return util.json_response(
        {'batches': [view(req, b, servers=False) for b in batches]})


def _load(req, state, action, batch_id):
    ctx = _context(req, state)
    _authorize(state, ctx, action)
    # Another project's batch is "not found", not "forbidden".
    return ctx, state.batches.queries.get(ctx, batch_id, ctx.project_id)


@util.validated(path=PATH)
def show(req, state, body, query, batch):
    _ctx, row = _load(req, state, bp.BATCHES_READ, batch)
    return util.json_response({'batch': view(req, row)})


@util.validated(path=PATH, query=DELETE_QUERY)
def delete(req, state, body, query, batch):
    ctx, row = _load(req, state, bp.BATCHES_DELETE, batch)
    row = state.batches.queries.request_delete(
        ctx, row.id, ctx.project_id, query.get('purge') == 'true')
    return util.json_response({'batch': view(req, row)}, status=202)


@util.validated(path=PATH)
def show_timeline(req, state, body, query, batch):
    ctx, row = _load(req, state, bp.BATCHES_READ, batch)
    events = state.batches.queries.events(ctx, row.id)
    return util.json_response({'timeline': timeline.build(row, events)})
