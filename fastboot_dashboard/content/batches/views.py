"""Views of the Boot Batches panel (plain Django/Horizon views)."""

from django.core import exceptions as core_exceptions
from django.urls import reverse
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import tables as horizon_tables
from horizon import tabs as horizon_tabs
from horizon.utils import memoized

from fastboot_dashboard.api import fastboot
from fastboot_dashboard.content.batches import forms as batch_forms
from fastboot_dashboard.content.batches import policy
from fastboot_dashboard.content.batches import tables
from fastboot_dashboard.content.batches import tabs

INDEX_URL = 'horizon:project:fastboot_batches:index'


class PolicyMixin:
    """403 unless the policy allows ``policy_rules``: an action hidden
    from the user must not work through its URL either (Horizon checks
    a panel's policy for the menu only).
    """

    policy_rules = ()

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and self.policy_rules and \
                not policy.check(self.policy_rules, request):
            raise core_exceptions.PermissionDenied(
                _('The policy does not allow this to your roles.'))
        return super().dispatch(request, *args, **kwargs)


class IndexView(PolicyMixin, horizon_tables.DataTableView):
    policy_rules = policy.READ
    table_class = tables.BatchesTable
    template_name = 'fastboot/batches/index.html'
    page_title = _('Boot Batches')

    def get_data(self):
        try:
            return fastboot.batch_list(self.request)
        except fastboot.FastbootError:
            exceptions.handle(self.request, _('Unable to list the batches.'))
            return []


class CreateView(PolicyMixin, forms.ModalFormView):
    policy_rules = policy.CREATE
    form_class = batch_forms.BootFromSnapshot
    form_id = 'fastboot_boot_form'
    template_name = 'fastboot/batches/create.html'
    modal_header = _('Boot from Snapshot')
    page_title = _('Boot from Snapshot')
    submit_label = _('Boot')
    submit_url = reverse_lazy('horizon:project:fastboot_batches:create')
    success_url = reverse_lazy(INDEX_URL)
    cancel_url = reverse_lazy(INDEX_URL)

    def get_initial(self):
        initial = super().get_initial()
        snapshot_id = self.request.GET.get('snapshot_id')
        if snapshot_id:
            initial['snapshot'] = snapshot_id
        return initial

    def get_success_url_from_handled(self, batch):
        # Straight to the new batch: the API answered 202 at once.
        return reverse('horizon:project:fastboot_batches:detail',
                       args=(batch.id,))


class DetailView(PolicyMixin, horizon_tabs.TabView):
    policy_rules = policy.READ
    tab_group_class = tabs.BatchDetailTabs
    template_name = 'horizon/common/_detail.html'
    page_title = '{{ batch.name }}'

    @memoized.memoized_method
    def get_data(self):
        try:
            return fastboot.batch_get(self.request, self.kwargs['batch_id'])
        except fastboot.FastbootError:
            exceptions.handle(self.request,
                              _('Unable to load the batch.'),
                              redirect=reverse(INDEX_URL))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        batch = self.get_data()
        table = tables.BatchesTable(self.request)
        context['batch'] = batch
        context['url'] = reverse(INDEX_URL)
        context['actions'] = table.render_row_actions(batch)
        return context

    def get_tabs(self, request, *args, **kwargs):
        batch = self.get_data()
        names = tabs.server_names(request, batch)
        return self.tab_group_class(request, batch=batch, names=names,
                                    **kwargs)
