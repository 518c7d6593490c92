"""WSGI entry point for uwsgi, gunicorn or mod_wsgi.

``gunicorn 'fastboot_nova.coordinator.wsgi:init_application()'``; the
configuration file comes from FASTBOOT_COORDINATOR_CONFIG (a path) or the
usual oslo.config search (fastboot.conf, fastboot-coordinator.conf).
"""

import os

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import deploy

CONFIG_ENV = 'FASTBOOT_COORDINATOR_CONFIG'


def init_application():
    files = None
    if os.environ.get(CONFIG_ENV):
        files = [os.environ[CONFIG_ENV]]
    conf = config.parse_args([], default_config_files=files)
    return deploy.make_app(conf)
