"""Aggregates every option group for oslo-config-generator.

Published through the ``oslo.config.opts`` entry point as namespace
``fastboot``. The privsep daemon's section (``[fastboot_sys_admin]``:
helper command, user, thread pool) is listed here too: oslo.privsep's
own namespace only knows the generic ``[privsep]`` group.
"""

from oslo_config import cfg
from oslo_privsep import priv_context

from fastboot_nova.conf import batches
from fastboot_nova.conf import coordinator
from fastboot_nova.conf import dm
from fastboot_nova.conf import fastboot
from fastboot_nova.conf import qemu

_MODULES = (fastboot, qemu, dm, coordinator, batches)


PRIVSEP_GROUP = cfg.OptGroup(
    'fastboot_sys_admin',
    help='The privsep daemon of the dm backend (fastboot_nova.privsep).')


def list_opts():
    return [(group, opts)
            for module in _MODULES
            for group, opts in module.list_opts().items()] + [
        (PRIVSEP_GROUP, priv_context.OPTS)]
