"""Django settings of the plugin's unit tests: Horizon's own test
settings with the fastboot panel enabled, as Horizon plugins do."""

import os

from horizon.test.settings import *  # noqa: F401,F403,H303
from openstack_dashboard.test.settings import *  # noqa: F401,F403,H303

from openstack_dashboard.utils import settings as settings_utils

import fastboot_dashboard.enabled
import openstack_dashboard.enabled

# Only the Project dashboard; the panel group and panel come from our
# enabled files exactly as on a real deployment.
HORIZON_CONFIG.pop('dashboards', None)  # noqa: F405
HORIZON_CONFIG.pop('default_dashboard', None)  # noqa: F405
HORIZON_CONFIG.pop('panel_customization', None)  # noqa: F405
settings_utils.update_dashboards(
    [openstack_dashboard.enabled, fastboot_dashboard.enabled],
    HORIZON_CONFIG,  # noqa: F405
    INSTALLED_APPS,  # noqa: F405
)
# update_dashboards appends the apps already listed: Django refuses
# duplicate labels.
INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))  # noqa: F405

_PLUGIN = os.path.dirname(os.path.abspath(fastboot_dashboard.__file__))
POLICY_FILES = dict(POLICY_FILES,  # noqa: F405
                    fastboot='fastboot_policy.yaml')
DEFAULT_POLICY_FILES = dict(
    DEFAULT_POLICY_FILES,  # noqa: F405
    fastboot=os.path.join(_PLUGIN, 'conf', 'default_policies',
                          'fastboot.yaml'))
