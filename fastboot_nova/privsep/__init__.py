"""oslo.privsep contexts of fastboot.

Only this package runs with privileges. Each topic module (``dm``,
``loop``, ``nbd``, ``multipath``) holds narrow, typed entrypoints; callers
use the full path, ``fastboot_nova.privsep.dm.create_linear(...)``, so
that every privileged call stands out in review. ``utils`` holds what they
share: argument checks, the command runner, and the confinement that keeps
every entrypoint to fastboot's own files and devices, decided from the
daemon's own configuration.

The daemon keeps uid 0 and only CAP_SYS_ADMIN: uid 0 owns
/dev/mapper/control, /dev/loop-control and the block devices, so no DAC
override is needed.
"""

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

CAPABILITIES = [caps.CAP_SYS_ADMIN]

sys_admin_pctxt = priv_context.PrivContext(
    'fastboot_nova',
    cfg_section='fastboot_sys_admin',
    pypath=__name__ + '.sys_admin_pctxt',
    capabilities=CAPABILITIES,
)
