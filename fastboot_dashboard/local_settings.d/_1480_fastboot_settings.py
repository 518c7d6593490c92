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

# A building batch's row refreshes every HORIZON_CONFIG['ajax_poll_interval']
# milliseconds (Horizon's own setting), one API request per batch. The
# API's timeout (seconds) may be set in local_settings.py:
# FASTBOOT_API_TIMEOUT = 30
