"""``openstack fastboot batch create|list|show|delete|timeline``."""

import datetime
import sys
import time

from osc_lib.command import command
from osc_lib import exceptions

FINAL = ('ACTIVE', 'PARTIAL', 'ERROR', 'DELETED')
SHOW_COLUMNS = ('id', 'name', 'state', 'count', 'server_states', 'flavor',
                'source', 'priority', 'origin_volume_id', 'image_id',
                'fault', 'project_id', 'created_at', 'updated_at',
                'servers')
LIST_COLUMNS = ('id', 'name', 'state', 'count', 'server_states',
                'created_at')
#: One character per phase in the bar chart.
BAR_CHARS = {'origin_ready': 'o', 'requested': 'r', 'scheduled': 's',
             'block_device': 'b', 'cache_attached': 'c',
             'overlay_created': 'v', 'ACTIVE': '#', 'ERROR': 'X'}
BAR_WIDTH = 40


def _client(cmd):
    return cmd.app.client_manager.fastboot


def _show(batch):
    return SHOW_COLUMNS, tuple(batch.get(c) for c in SHOW_COLUMNS)


class CreateBatch(command.ShowOne):
    """Boot N servers from one volume snapshot (or volume)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument('--snapshot', metavar='<snapshot-id>')
        source.add_argument('--volume', metavar='<volume-id>')
        parser.add_argument('--count', type=int, required=True)
        parser.add_argument('--flavor', required=True)
        parser.add_argument('--name', default='batch')
        parser.add_argument(
            '--network', action='append', metavar='<uuid|none|auto>',
            help='Network uuid (repeat), or "none" / "auto".')
        parser.add_argument('--key-name')
        parser.add_argument('--availability-zone')
        parser.add_argument('--priority', choices=['user', 'retry', 'ha'])
        parser.add_argument('--idempotency-key',
                            help='Retrying with the same key returns the '
                                 'same batch (default: a new uuid).')
        parser.add_argument('--wait', action='store_true',
                            help='Wait until the batch is ACTIVE, PARTIAL '
                                 'or ERROR, with a progress bar on stderr.')
        parser.add_argument('--wait-timeout', type=float, default=3600)
        return parser

    def take_action(self, args):
        body = {'count': args.count, 'flavor': args.flavor,
                'name': args.name,
                'source': ({'volume_snapshot_id': args.snapshot}
                           if args.snapshot else {'volume_id': args.volume})}
        if args.network:
            if args.network in (['none'], ['auto']):
                body['networks'] = args.network[0]
            else:
                body['networks'] = [{'uuid': n} for n in args.network]
        for key in ('key_name', 'availability_zone', 'priority'):
            if getattr(args, key):
                body[key] = getattr(args, key)
        client = _client(self)
        batch = client.batch_create(body, args.idempotency_key)
        if args.wait:
            batch = wait(client, batch['id'], args.wait_timeout)
        return _show(batch)


def _progress(batch, out):
    done = batch['server_states'].get('ACTIVE', 0)
    failed = batch['server_states'].get('ERROR', 0)
    count = batch['count'] or 1
    filled = int(BAR_WIDTH * (done + failed) / count)
    out.write('\r[%s%s] %d/%d ACTIVE, %d ERROR, %s ' % (
        '#' * filled, '.' * (BAR_WIDTH - filled), done, count, failed,
        batch['state']))
    out.flush()


def wait(client, batch_id, timeout, interval=1.0, out=None):
    out = out or sys.stderr
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batch_show(batch_id)
        _progress(batch, out)
        if batch['state'] in FINAL:
            out.write('\n')
            return batch
        if time.monotonic() > deadline:
            out.write('\n')
            raise exceptions.CommandError(
                'Batch %s is still %s after %ds' % (batch_id, batch['state'],
                                                    timeout))
        time.sleep(interval)


class ListBatch(command.Lister):
    """List the boot batches of the project."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--all-projects', action='store_true')
        return parser

    def take_action(self, args):
        batches = _client(self).batch_list(args.all_projects)
        return LIST_COLUMNS, [tuple(b.get(c) for c in LIST_COLUMNS)
                              for b in batches]


class ShowBatch(command.ShowOne):
    """Show a boot batch: state, counts, origin, servers."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('batch', metavar='<batch-id>')
        return parser

    def take_action(self, args):
        return _show(_client(self).batch_show(args.batch))


class DeleteBatch(command.Command):
    """Delete a batch's servers (and its origin with --purge)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('batch', metavar='<batch-id>', nargs='+')
        parser.add_argument('--purge', action='store_true',
                            help='Also delete the origin volume and image '
                                 'when no other batch uses them.')
        return parser

    def take_action(self, args):
        for batch_id in args.batch:
            _client(self).batch_delete(batch_id, args.purge)


def _parse(value):
    return datetime.datetime.fromisoformat(value.rstrip('Z'))


def bar(phases, start, total):
    """A text bar: each phase's span drawn with its character."""
    if not total:
        return ''
    cells = []
    for phase, at in sorted(phases.items(), key=lambda kv: kv[1]):
        char = BAR_CHARS.get(phase)
        if char is None:
            continue
        offset = (at - start).total_seconds()
        width = int(round(BAR_WIDTH * offset / total)) - len(cells)
        cells.extend(char * max(width, 0))
    return ''.join(cells).ljust(BAR_WIDTH, ' ')


class TimelineBatch(command.Lister):
    """Per server, seconds from acceptance to each phase, and a bar."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('batch', metavar='<batch-id>')
        return parser

    def take_action(self, args):
        timeline = _client(self).batch_timeline(args.batch)
        phases = [p for p in timeline['phases'] if p != 'accepted']
        start = _parse(timeline['start']) if timeline['start'] else None
        rows = []
        parsed = []
        for server in timeline['servers']:
            times = {p: _parse(t) for p, t in server['phases'].items()}
            parsed.append(times)
        total = max([(t - start).total_seconds()
                     for times in parsed for t in times.values()] or [0])
        for server, times in zip(timeline['servers'], parsed, strict=True):
            row = [server['id'], server['state']]
            for phase in phases:
                row.append(round((times[phase] - start).total_seconds(), 3)
                           if phase in times and start else None)
            row.append(bar(times, start, total) if start else '')
            rows.append(tuple(row))
        columns = ['server', 'state'] + phases + [
            'bar (%s, %.1fs)' % (' '.join('%s=%s' % (c, p) for p, c in
                                          _legend()), total)]
        return columns, rows


def _legend():
    seen = {}
    for phase, char in BAR_CHARS.items():
        seen.setdefault(char, phase)
    return [(p, c) for c, p in seen.items()]
