"""The Nova compute driver extension.

``driver.FastBootDriver`` is a LibvirtDriver that boots servers "the
fastboot way": a private copy-on-write disk over a host-cached shared
volume. Nova loads it through the shim ``nova.virt.fastboot.driver``.
"""
