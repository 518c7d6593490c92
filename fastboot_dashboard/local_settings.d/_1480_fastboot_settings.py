# Copy into openstack_dashboard/local/local_settings.d/ (the devstack
# plugin does). Registers the fastboot policy file the way manila-ui and
# heat-dashboard register theirs: POLICY_FILES names the operator's copy
# under POLICY_FILES_PATH (optional), DEFAULT_POLICY_FILES the defaults
# shipped with the plugin, which mirror the coordinator's in-code rules.
import os

from django.conf import settings

import fastboot_dashboard

settings.POLICY_FILES.update({'fastboot': 'fastboot_policy.yaml'})
settings.DEFAULT_POLICY_FILES.update({
    'fastboot': os.path.join(os.path.dirname(fastboot_dashboard.__file__),
                             'conf', 'default_policies', 'fastboot.yaml')})

# Seconds between two refreshes of a batch row that is still building.
FASTBOOT_REFRESH_INTERVAL = 5
