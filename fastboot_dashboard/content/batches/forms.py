"""The "Boot from Snapshot" form.

Everything the batch API would refuse and the dashboard can see is
checked here first, with the reason next to the field: the snapshot is
gone or not available, the count is 0 or beyond the instances quota
left (shown under the field), the flavor's root disk is smaller than the
snapshot. The API checks them again (it is the authority); what it still
refuses is shown as its own message and nothing is made.
"""

import logging
import uuid

from cinderclient import exceptions as cinder_exceptions
from django.core import validators
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from openstack_dashboard import api
from openstack_dashboard.usage import quotas

from fastboot_dashboard.api import fastboot

LOG = logging.getLogger(__name__)

NO_NETWORK = 'none'
#: The batch API's server name rule (fastboot_nova/coordinator/api).
NAME_REGEX = r'^[A-Za-z0-9][A-Za-z0-9._-]*\Z'
NAME_MAX = 200


def instances_left(request):
    """Servers the project may still create; None when unknown or
    unlimited (the API then has the last word).
    """
    try:
        usages = quotas.tenant_quota_usages(request, targets=('instances',))
        available = usages['instances'].get('available')
    except Exception:
        LOG.info('Could not read the instances quota', exc_info=True)
        return None
    if available is None or available == float('inf'):
        return None
    return max(0, int(available))


class BootFromSnapshot(forms.SelfHandlingForm):
    snapshot = forms.ThemableChoiceField(label=_('Volume Snapshot'))
    count = forms.IntegerField(label=_('Number of Servers'), min_value=1,
                               initial=1)
    flavor = forms.ThemableChoiceField(label=_('Flavor'))
    network = forms.ThemableChoiceField(label=_('Network'))
    key_name = forms.ThemableChoiceField(label=_('Key Pair'),
                                         required=False)
    name = forms.CharField(
        label=_('Name Prefix'), max_length=NAME_MAX,
        validators=[validators.RegexValidator(
            NAME_REGEX,
            _('Letters, digits, ".", "_" and "-", starting with a letter '
              'or a digit.'))],
        help_text=_('Servers are named after it.'))
    idempotency_key = forms.CharField(widget=forms.HiddenInput())

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.snapshots = self._snapshots(request)
        self.fields['snapshot'].choices = (
            [('', _('Select a snapshot'))] +
            [(s.id, '%s (%d GiB)' % (s.name or s.id, s.size))
             for s in self.snapshots.values()])
        self.flavors = self._flavors(request)
        self.fields['flavor'].choices = (
            [('', _('Select a flavor'))] +
            [(f.name, '%s (%d GiB disk)' % (f.name, f.disk))
             for f in self.flavors.values()])
        self.fields['network'].choices = self._networks(request)
        self.fields['key_name'].choices = self._keypairs(request)
        self.left = instances_left(request)
        if self.left is not None:
            # In the label, not only in the help tooltip: the user needs
            # the number before typing one.
            self.fields['count'].label = _(
                'Number of Servers (%d left in the quota)') % self.left
            self.fields['count'].help_text = _(
                '%d more servers allowed by the project quota.') % self.left
        if not self.initial.get('idempotency_key'):
            self.initial['idempotency_key'] = str(uuid.uuid4())

    @staticmethod
    def _snapshots(request):
        try:
            found = api.cinder.volume_snapshot_list(
                request, search_opts={'status': 'available'})
        except Exception:
            exceptions.handle(request,
                              _('Unable to list the volume snapshots.'))
            found = []
        return {s.id: s for s in found if s.status == 'available'}

    @staticmethod
    def _flavors(request):
        try:
            found = api.nova.flavor_list(request)
        except Exception:
            exceptions.handle(request, _('Unable to list the flavors.'))
            found = []
        return {f.name: f for f in sorted(found, key=lambda f: f.name)}

    @staticmethod
    def _networks(request):
        choices = [(NO_NETWORK, _('No network'))]
        if not api.base.is_service_enabled(request, 'network'):
            return choices
        try:
            networks = api.neutron.network_list_for_tenant(
                request, request.user.project_id)
        except Exception:
            exceptions.handle(request, _('Unable to list the networks.'))
            networks = []
        return choices + [(n.id, n.name_or_id) for n in networks]

    @staticmethod
    def _keypairs(request):
        try:
            found = api.nova.keypair_list(request)
        except Exception:
            exceptions.handle(request, _('Unable to list the key pairs.'))
            found = []
        return [('', _('No key pair'))] + [(k.name, k.name) for k in found]

    def clean_count(self):
        count = self.cleaned_data['count']
        if self.left is not None and count > self.left:
            raise forms.ValidationError(
                _('%(count)d servers are more than the %(left)d the '
                  'project quota allows.') % {'count': count,
                                              'left': self.left})
        return count

    def clean_snapshot(self):
        snapshot_id = self.cleaned_data['snapshot']
        # The list may be minutes old: ask again.
        try:
            snapshot = api.cinder.volume_snapshot_get(self.request,
                                                      snapshot_id)
        except cinder_exceptions.NotFound:
            raise forms.ValidationError(
                _('The snapshot no longer exists.'))
        except Exception:
            LOG.info('Could not check snapshot %s', snapshot_id,
                     exc_info=True)
            raise forms.ValidationError(
                _('Unable to check the snapshot; try again.'))
        if snapshot.status != 'available':
            raise forms.ValidationError(
                _('The snapshot is %s, not available.') % snapshot.status)
        self.snapshots[snapshot.id] = snapshot
        return snapshot_id

    def clean(self):
        data = super().clean()
        snapshot = self.snapshots.get(data.get('snapshot'))
        flavor = self.flavors.get(data.get('flavor'))
        if snapshot is not None and flavor is not None and flavor.disk and \
                flavor.disk < snapshot.size:
            self.add_error('flavor', _(
                'Flavor %(flavor)s has a %(disk)d GiB root disk, smaller '
                'than the %(size)d GiB snapshot.') % {
                    'flavor': flavor.name, 'disk': flavor.disk,
                    'size': snapshot.size})
        return data

    def handle(self, request, data):
        network = data['network']
        networks = (NO_NETWORK if network == NO_NETWORK
                    else [{'uuid': network}])
        try:
            return fastboot.batch_create(
                request, data['snapshot'], data['count'], data['flavor'],
                data['name'], networks=networks,
                key_name=data.get('key_name') or None,
                idempotency_key=data['idempotency_key'])
        except fastboot.FastbootError as e:
            exceptions.handle(request, _('Unable to boot the servers: %s')
                              % e.message)
            return False
