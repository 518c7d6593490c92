"""Shim package: ``compute_driver = fastboot.driver.FastBootDriver``.

Nova imports compute drivers as ``nova.virt.<compute_driver>``. The code
lives in ``fastboot_nova.virt``; nothing else belongs here. This package
never ships ``nova/__init__.py`` or ``nova/virt/__init__.py``: those belong
to Nova.
"""
