"""WSGI entry point: ``fastboot_nova.coordinator.wsgi:init_application()``.

For uWSGI (``--module 'fastboot_nova.coordinator.wsgi:init_application()'``,
as ``fastboot-coordinator`` and ``etc/fastboot/coordinator-uwsgi.ini`` do)
or gunicorn. Run it with uWSGI's ``lazy-apps`` (gunicorn's default): each
worker then builds its own application, with its own database pool and
tooz membership. The configuration files come from
FASTBOOT_COORDINATOR_CONFIG (paths separated by ``:``) and
FASTBOOT_COORDINATOR_CONFIG_DIR, else the usual oslo.config search
(fastboot.conf, fastboot-coordinator.conf).
"""

import os

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import deploy

CONFIG_ENV = 'FASTBOOT_COORDINATOR_CONFIG'
CONFIG_DIR_ENV = 'FASTBOOT_COORDINATOR_CONFIG_DIR'


def init_application():
    files = None
    if os.environ.get(CONFIG_ENV):
        files = [f for f in os.environ[CONFIG_ENV].split(os.pathsep) if f]
    argv = []
    if os.environ.get(CONFIG_DIR_ENV):
        argv = ['--config-dir', os.environ[CONFIG_DIR_ENV]]
    conf = config.parse_args(argv, default_config_files=files)
    return deploy.make_app(conf)
