"""Wrappers of the services the panel talks to.

Only the fastboot batch API lives here; Cinder, Nova and Neutron are
reached through Horizon's own ``openstack_dashboard.api`` modules.
"""

from fastboot_dashboard.api import fastboot  # noqa: F401
