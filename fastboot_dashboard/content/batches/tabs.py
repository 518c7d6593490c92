"""Tabs of the batch detail page: overview, servers, timeline."""

import logging

from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import tabs
from openstack_dashboard import api

from fastboot_dashboard.api import fastboot
from fastboot_dashboard.content.batches import tables
from fastboot_dashboard.content.batches import timeline

LOG = logging.getLogger(__name__)


def server_names(request, batch):
    """id -> name of the batch's servers from ONE Nova list call (names
    are only cosmetic: an error leaves them out).
    """
    ids = {s.get('id') for s in batch.servers or [] if s.get('id')}
    if not ids:
        return {}
    try:
        servers, _more = api.nova.server_list(
            request, search_opts={'name': '^%s-' % batch.name})
    except Exception:
        LOG.info('Could not list the servers of batch %s', batch.id,
                 exc_info=True)
        return {}
    return {s.id: s.name for s in servers if s.id in ids}


class OverviewTab(tabs.Tab):
    name = _('Overview')
    slug = 'overview'
    template_name = 'fastboot/batches/_detail_overview.html'

    def get_context_data(self, request):
        batch = self.tab_group.kwargs['batch']
        return {'batch': batch, 'progress': tables.progress(batch)}


class ServersTab(tabs.TableTab):
    name = _('Servers')
    slug = 'servers'
    table_classes = (tables.ServersTable,)
    template_name = 'horizon/common/_detail_table.html'
    preload = True

    def get_servers_data(self):
        batch = self.tab_group.kwargs['batch']
        names = self.tab_group.kwargs['names']
        return fastboot.batch_servers(batch, names)


class TimelineTab(tabs.Tab):
    name = _('Timeline')
    slug = 'timeline'
    template_name = 'fastboot/batches/_detail_timeline.html'
    preload = True

    def get_context_data(self, request):
        batch = self.tab_group.kwargs['batch']
        try:
            data = fastboot.batch_timeline(request, batch.id)
        except fastboot.FastbootError:
            exceptions.handle(request, _('Unable to load the timeline.'))
            data = {'servers': []}
        return {'batch': batch, 'summary': timeline.summary(data),
                'chart': timeline.render_svg(data,
                                             self.tab_group.kwargs['names'])}


class BatchDetailTabs(tabs.DetailTabsGroup):
    slug = 'batch_details'
    tabs = (OverviewTab, ServersTab, TimelineTab)
