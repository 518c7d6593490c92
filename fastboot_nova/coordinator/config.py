"""Parsing the coordinator configuration (console scripts and WSGI)."""

from oslo_config import cfg
from oslo_log import log

from fastboot_nova.coordinator import deploy

PROJECT = 'fastboot'


def parse_args(argv, conf=None, prog='fastboot-coordinator',
               default_config_files=None):
    conf = conf or cfg.ConfigOpts()
    deploy.register_opts(conf)
    log.register_options(conf)
    conf(argv, project=PROJECT, prog=prog,
         default_config_files=default_config_files)
    log.setup(conf, 'fastboot-coordinator')
    return conf
