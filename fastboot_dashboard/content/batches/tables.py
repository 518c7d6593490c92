"""Batches table (index) and servers table (detail tab).

A building batch's row refreshes through Horizon's row update: one
``GET /v1/batches/{id}`` per batch per poll interval, whatever the
number of servers (the counts per state come with the batch). Rows stop
polling once the batch is ACTIVE, PARTIAL, ERROR or DELETED.
"""

from django.template import loader
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables
from horizon.utils import filters

from fastboot_dashboard.api import fastboot
from fastboot_dashboard.content.batches import policy

DONE = {'ACTIVE': True, 'DELETED': True, 'PARTIAL': False, 'ERROR': False}
STATE_DISPLAY = (
    ('PENDING', _('Pending')), ('PREPARING', _('Preparing')),
    ('BUILDING', _('Building')), ('ACTIVE', _('Active')),
    ('PARTIAL', _('Partial')), ('ERROR', _('Error')),
    ('DELETING', _('Deleting')), ('DELETED', _('Deleted')),
)


class BootBatch(tables.LinkAction):
    name = 'create'
    verbose_name = _('Boot from Snapshot')
    url = 'horizon:project:fastboot_batches:create'
    classes = ('ajax-modal',)
    icon = 'plus'
    policy_rules = policy.CREATE


class DeleteBatch(tables.DeleteAction):
    policy_rules = policy.DELETE
    help_text = _('The servers of the batch are deleted. The origin volume '
                  'is kept for the next batch of the same snapshot.')

    @staticmethod
    def action_present(count):
        return ngettext_lazy('Delete Batch', 'Delete Batches', count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy('Scheduled deletion of Batch',
                             'Scheduled deletion of Batches', count)

    def allowed(self, request, batch=None):
        return batch is None or batch.state not in ('DELETING', 'DELETED')

    def delete(self, request, obj_id):
        fastboot.batch_delete(request, obj_id)


class UpdateRow(tables.Row):
    ajax = True

    def get_data(self, request, batch_id):
        # A batch gone meanwhile (purged) shows as DELETED: the row stops
        # polling instead of failing every interval.
        try:
            return fastboot.batch_get(request, batch_id)
        except fastboot.FastbootError as e:
            if e.status != 404:
                raise
            return fastboot.Batch({'id': batch_id, 'name': batch_id,
                                   'state': 'DELETED', 'count': 0,
                                   'server_states': {}})


def progress(batch):
    if batch.state == 'DELETED':
        # Its servers are gone on purpose: "0/4 ACTIVE" would read as a
        # failure.
        return '-'
    template = loader.get_template('fastboot/batches/_progress.html')
    total = batch.count or 0
    active = batch.active
    errors = batch.errors
    return template.render({
        'total': total, 'active': active, 'errors': errors,
        'active_pct': 100.0 * active / total if total else 0,
        'error_pct': 100.0 * errors / total if total else 0,
    })


def snapshot_link(batch):
    return batch.snapshot_id or '-'


class BatchesTable(tables.DataTable):
    name = tables.WrappingColumn(
        'name', verbose_name=_('Name'),
        link='horizon:project:fastboot_batches:detail')
    state = tables.Column('state', verbose_name=_('Status'), status=True,
                          status_choices=tuple(DONE.items()),
                          display_choices=STATE_DISPLAY)
    progress = tables.Column(progress, verbose_name=_('Progress'),
                             classes=('fastboot-progress',))
    flavor = tables.Column('flavor', verbose_name=_('Flavor'))
    snapshot = tables.Column(snapshot_link, verbose_name=_('Snapshot'))
    # As Horizon's Volume Snapshots table: a localized date, not the API's
    # ISO 8601 string.
    created = tables.Column('created_at', verbose_name=_('Created'),
                            filters=(filters.parse_isotime,))

    class Meta:
        name = 'batches'
        verbose_name = _('Boot Batches')
        status_columns = ['state']
        row_class = UpdateRow
        table_actions = (BootBatch, DeleteBatch)
        row_actions = (DeleteBatch,)


def server_link(server):
    if not server.id:
        return None
    return reverse('horizon:project:instances:detail', args=(server.id,))


class ServersTable(tables.DataTable):
    name = tables.Column(lambda s: s.name or s.id or '-',
                         verbose_name=_('Name'), link=server_link)
    host = tables.Column('host', verbose_name=_('Host'))
    state = tables.Column('state', verbose_name=_('Status'),
                          status=True,
                          status_choices=(('ACTIVE', True),
                                          ('DELETED', True),
                                          ('ERROR', False)))
    attempts = tables.Column('attempts', verbose_name=_('Attempts'))
    fault = tables.WrappingColumn('fault', verbose_name=_('Fault'))

    def get_object_id(self, datum):
        return str(datum.index)

    class Meta:
        name = 'servers'
        verbose_name = _('Servers')
