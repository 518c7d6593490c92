"""Shim: ``compute_driver = fastboot.driver.FastBootDriver``."""

from fastboot_nova.virt import driver

FastBootDriver = driver.FastBootDriver

__all__ = ['FastBootDriver']
