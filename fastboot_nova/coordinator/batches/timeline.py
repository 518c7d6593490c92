"""A batch's timeline: when each server reached each phase.

Events come from three sources and land in ``batch_events``: the API
(accepted), the runner (origin ready, requested, ACTIVE/ERROR as it polls)
and the notification listener (Nova's ``instance.create.start`` /
``.end``, block device and spawn phases, and FastBootDriver's own cache
and overlay notifications). Here they are folded into one row per server,
the first time of each phase, plus each phase's duration from the one
before it.
"""

import json

#: Phases in the order a boot goes through them.
#: ``block_device`` is FastBootDriver's cache attach start; a server
#: spawns (libvirt defines and starts the domain, the guest boots) from
#: ``overlay_created`` to ``ACTIVE``.
PHASES = ('accepted', 'origin_ready', 'requested', 'scheduled',
          'block_device', 'cache_attached', 'overlay_created', 'ACTIVE',
          'ERROR')
BATCH_PHASES = ('accepted', 'origin_ready')


def _time(value):
    return value.isoformat() + 'Z'


def _detail(event):
    return json.loads(event.detail) if event.detail else None


def build(batch, events):
    batch_phases = {}
    per_server = {}
    details = {}
    for event in events:
        if event.server_id is None:
            batch_phases.setdefault(event.phase, event.at)
            continue
        phases = per_server.setdefault(event.server_id, {})
        phases.setdefault(event.phase, event.at)
        if event.detail:
            details.setdefault(event.server_id, {})[event.phase] = (
                _detail(event))
    servers = []
    for server in batch.servers:
        if not server.server_id:
            continue
        phases = dict(batch_phases)
        phases.update(per_server.get(server.server_id, {}))
        servers.append(_server_row(server, phases,
                                   details.get(server.server_id, {})))
    start = batch_phases.get('accepted')
    return {'batch_id': batch.id,
            'phases': list(PHASES),
            'batch': {p: _time(t) for p, t in sorted(
                batch_phases.items(), key=lambda kv: kv[1])},
            'servers': servers,
            'start': _time(start) if start else None}


def _server_row(server, phases, details):
    ordered = [p for p in PHASES if p in phases]
    durations = {}
    previous = None
    for phase in ordered:
        if previous is not None:
            durations[phase] = round(
                (phases[phase] - phases[previous]).total_seconds(), 3)
        previous = phase
    return {'id': server.server_id,
            'index': server.index,
            'state': server.state,
            'phases': {p: _time(phases[p]) for p in ordered},
            'durations': durations,
            'details': details}
