"""fastboot configuration: one module per option group."""

from oslo_config import cfg

from fastboot_nova.conf import fastboot

CONF = cfg.CONF

fastboot.register_opts(CONF)
