"""Aggregates every option group for oslo-config-generator.

Published through the ``oslo.config.opts`` entry point as namespace
``fastboot``.
"""

from fastboot_nova.conf import batches
from fastboot_nova.conf import coordinator
from fastboot_nova.conf import dm
from fastboot_nova.conf import fastboot
from fastboot_nova.conf import qemu

_MODULES = (fastboot, qemu, dm, coordinator, batches)


def list_opts():
    return [(group, opts)
            for module in _MODULES
            for group, opts in module.list_opts().items()]
