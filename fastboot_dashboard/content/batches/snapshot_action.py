"""The "Boot Servers" row action on Horizon's Volume Snapshots table.

Horizon has no hook for a plugin to add a row action to another panel's
table, so the action is appended to the table class when the panel
loads (once; the table keeps its own actions first).
"""

from urllib import parse

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import tables
from openstack_dashboard.api import base

from fastboot_dashboard.content.batches import policy


class BootFromSnapshot(tables.LinkAction):
    name = 'fastboot_boot'
    verbose_name = _('Boot Servers')
    url = 'horizon:project:fastboot_batches:create'
    classes = ('ajax-modal',)
    icon = 'rocket'
    policy_rules = policy.CREATE

    def get_link_url(self, datum=None):
        return '%s?%s' % (reverse(self.url),
                          parse.urlencode({'snapshot_id': datum.id}))

    def allowed(self, request, snapshot=None):
        if snapshot is not None and \
                getattr(snapshot, 'status', None) != 'available':
            return False
        return base.is_service_enabled(request, 'fastboot')


def register(table_class=None):
    if table_class is None:
        from openstack_dashboard.dashboards.project.snapshots import (
            tables as snapshot_tables)
        table_class = snapshot_tables.VolumeSnapshotsTable
    meta = table_class._meta
    if BootFromSnapshot.name in table_class.base_actions:
        return
    meta.row_actions = tuple(meta.row_actions) + (BootFromSnapshot,)
    table_class.base_actions[BootFromSnapshot.name] = BootFromSnapshot()
