"""The "Boot Batches" panel.

Shown only when the user's catalog has the ``fastboot`` service
(``permissions``) and the policy lets the user read batches. Importing
this module also adds the "Boot Servers" row action to Horizon's Volume
Snapshots table (see :mod:`.snapshot_action`).
"""

from django.utils.translation import gettext_lazy as _
import horizon

from fastboot_dashboard.content.batches import policy
from fastboot_dashboard.content.batches import snapshot_action


class Batches(horizon.Panel):
    name = _('Boot Batches')
    slug = 'fastboot_batches'
    permissions = ('openstack.services.fastboot',)
    policy_rules = policy.READ


snapshot_action.register()
