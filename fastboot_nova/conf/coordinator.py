"""The ``[coordinator]`` option group: the fastboot-coordinator service.

The ``[database]`` group comes from oslo.db (its own ``oslo.db`` namespace
for the sample config); :func:`register_opts` registers it too, with a
default that keeps the SQLite file under ``state_path``.
"""

import os

from oslo_config import cfg
from oslo_db import options as db_options

from fastboot_nova.i18n import _

GROUP_NAME = 'coordinator'


def _group():
    return cfg.OptGroup(
        GROUP_NAME,
        title=_('fastboot coordinator options'),
        help=_('Options of fastboot-coordinator, the service that records '
               'which host caches which volume and builds the tree of hosts '
               'that read from each other instead of all from the origin.'))


coordinator_group = _group()

service_opts = [
    cfg.StrOpt('state_path',
               default='/var/lib/fastboot/coordinator',
               help=_('Directory of the default SQLite database '
                      '(coordinator.sqlite) and of the default tooz file '
                      'backend (tooz/).')),
    cfg.HostAddressOpt('bind_host',
                       default='127.0.0.1',
                       help=_('Address the fastboot-coordinator launcher '
                              'serves on (through uWSGI). Not used when '
                              'you run uWSGI or another WSGI server '
                              'yourself.')),
    cfg.PortOpt('bind_port',
                default=8790,
                help=_('TCP port the fastboot-coordinator launcher serves '
                       'on (default 8790).')),
    cfg.IntOpt('workers',
               default=2,
               min=1,
               help=_('uWSGI worker processes of the fastboot-coordinator '
                      'launcher.')),
    cfg.IntOpt('threads',
               default=4,
               min=1,
               help=_('Threads per uWSGI worker of the fastboot-coordinator '
                      'launcher.')),
    cfg.IntOpt('header_timeout',
               default=10,
               min=1,
               help=_('Seconds a client has to send the complete request '
                      'headers; slower connections are closed before '
                      'they reach a worker.')),
    cfg.IntOpt('client_timeout',
               default=30,
               min=1,
               help=_('Seconds a client connection may stay idle (a '
                      'half-sent body, an idle keep-alive) before it is '
                      'closed. The launcher uses at least '
                      'request_timeout: uWSGI\'s router applies the same '
                      'timeout to the wait for the worker\'s answer.')),
    cfg.IntOpt('request_timeout',
               default=60,
               min=1,
               help=_('Seconds a worker may spend on one request before '
                      'uWSGI kills and replaces it (harakiri).')),
    cfg.IntOpt('listen_backlog',
               default=128,
               min=1,
               help=_('Connections the kernel queues for the server before '
                      'refusing more (the listen backlog).')),
    cfg.StrOpt('auth_strategy',
               default='keystone',
               choices=[('keystone', _('keystonemiddleware auth_token and '
                                       'oslo.policy rules.')),
                        ('shared_secret', _('Standalone: every request '
                                            'carries X-Fastboot-Secret; each '
                                            'host also gets its own token '
                                            'at registration.'))],
               help=_('How API requests are authenticated.')),
    cfg.StrOpt('shared_secret',
               secret=True,
               help=_('The secret every request must carry in the '
                      'X-Fastboot-Secret header when auth_strategy is '
                      'shared_secret. The service refuses to start in that '
                      'mode without one.')),
    cfg.StrOpt('backend_url',
               help=_('tooz coordination backend URL used for locks around '
                      'tree changes and for the membership of coordinator '
                      'replicas. All replicas must share it. Unset means '
                      'file://<state_path>/tooz, fit for replicas on one '
                      'machine only; use etcd3+http://, zookeeper:// or '
                      'redis:// across machines.')),
    cfg.IntOpt('host_timeout',
               default=30,
               min=1,
               help=_('Seconds after its last heartbeat at which a host is '
                      'considered dead: it is left out of the trees and its '
                      'children read from another parent.')),
    cfg.IntOpt('fanout',
               default=3,
               min=1,
               max=64,
               help=_('Most children a cache (or the origin) serves in a '
                      'volume tree. The tree depth is about '
                      'ceil(log_fanout(hosts)).')),
    cfg.IntOpt('alternates',
               default=2,
               min=0,
               max=16,
               help=_('How many alternate parents each host is given, '
                      'besides its primary parent, to fail over to before '
                      'the coordinator re-parents it.')),
    cfg.IntOpt('lock_timeout',
               default=30,
               min=1,
               help=_('Seconds a request waits for the tooz lock of a '
                      'volume tree before failing with 503.')),
]

DEFAULT_MAX_BODY = 64 * 1024


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts: an OptGroup holds the overrides of
    # its options, so sharing one would leak set_override() between
    # configurations (the service and its tests use several).
    group = _group()
    conf.register_group(group)
    conf.register_opts(service_opts, group=group)
    db_options.set_defaults(conf)


def default_connection(conf):
    """SQLite under state_path when ``[database] connection`` is unset."""
    if conf.database.connection:
        return conf.database.connection
    return 'sqlite:///%s' % os.path.join(conf.coordinator.state_path,
                                         'coordinator.sqlite')


def default_backend_url(conf):
    """The tooz file driver under state_path unless configured."""
    if conf.coordinator.backend_url:
        return conf.coordinator.backend_url
    return 'file://%s' % os.path.join(conf.coordinator.state_path, 'tooz')


#: The hosts' auth section for a coordinator with keystone auth, loaded
#: with keystoneauth1.loading as Nova loads [placement] or [cinder].
CLIENT_GROUP = 'fastboot_coordinator'
CLIENT_HELP = _('How hosts (the fastboot agent, nova-compute) authenticate '
                'to a coordinator whose auth_strategy is keystone: a '
                'keystoneauth1 auth section (auth_type = password, auth_url, '
                'username, password, project_name, user_domain_name, '
                'project_domain_name; a user with the service role) and '
                'session options. Unset auth_type: hosts send [fastboot] '
                'coordinator_secret instead (auth_strategy = '
                'shared_secret).')


def register_client_opts(conf):
    """The hosts' keystoneauth1 section; safe to call twice."""
    # Imported here: the coordinator service itself never needs it.
    from keystoneauth1 import loading as ks_loading
    if CLIENT_GROUP not in conf:
        conf.register_group(cfg.OptGroup(CLIENT_GROUP, help=CLIENT_HELP))
    ks_loading.register_session_conf_options(conf, CLIENT_GROUP)
    ks_loading.register_auth_conf_options(conf, CLIENT_GROUP)


def list_opts():
    from keystoneauth1 import loading as ks_loading
    return {coordinator_group: service_opts,
            cfg.OptGroup(CLIENT_GROUP, help=CLIENT_HELP): (
                ks_loading.get_session_conf_options() +
                ks_loading.get_auth_common_conf_options() +
                ks_loading.get_auth_plugin_conf_options('password'))}
