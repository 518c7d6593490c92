# The "Fast Boot" panel group of the Project dashboard, after Compute.
from django.utils.translation import gettext_lazy as _

PANEL_GROUP = 'fastboot'
PANEL_GROUP_NAME = _('Fast Boot')
PANEL_GROUP_DASHBOARD = 'project'
