"""The ``[batches]`` option group: boot batches and ``fastboot-runner``.

``[batches_auth]`` holds the keystoneauth options (``auth_type``,
``auth_url``, ``username``, ...) of the runner's service user, the trustee
of every batch's trust.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from fastboot_nova.i18n import _

GROUP_NAME = 'batches'
AUTH_GROUP = 'batches_auth'


def _group():
    return cfg.OptGroup(
        GROUP_NAME, title=_('fastboot boot batches'),
        help=_('Boot batches (POST /v1/batches) and fastboot-runner, the '
               'process that prepares origins and creates the servers.'))


batch_opts = [
    cfg.IntOpt('max_count', default=1000, min=1,
               help=_('Most servers one batch may ask for; more is 400.')),
    cfg.IntOpt('max_server_retries', default=2, min=0,
               help=_('How many times the runner re-creates a server that '
                      'went to ERROR before recording its fault.')),
    cfg.IntOpt('cloud_retries', default=3, min=0,
               help=_('How many times a Cinder/Glance/Nova call that '
                      'answered 5xx or timed out is retried.')),
    cfg.FloatOpt('retry_interval', default=2.0, min=0,
                 help=_('Seconds between those retries (doubled each '
                        'time).')),
    cfg.IntOpt('bulk_size', default=0, min=0,
               help=_('Servers per Nova create request: 0 sends one '
                      'request for the whole batch (min_count = max_count '
                      '= count); N sends bulks of N, e.g. the hosts times '
                      'the servers per host of the tuning profile.')),
    cfg.FloatOpt('poll_interval', default=2.0, min=0.05,
                 help=_('Seconds between the runner\'s looks at the '
                        'database and at the servers it is building.')),
    cfg.IntOpt('build_timeout', default=1800, min=1,
               help=_('Seconds a server may stay BUILD before the runner '
                      'records it as ERROR.')),
    cfg.IntOpt('origin_timeout', default=600, min=1,
               help=_('Seconds the origin volume may take to become '
                      'available.')),
    cfg.StrOpt('volume_type', default='fastboot-shared',
               help=_('Cinder volume type of origin volumes; it must be '
                      'multiattach ("multiattach=<is> True").')),
    cfg.StrOpt('cache_trait', default='CUSTOM_FASTBOOT_CACHE_SNAPSHOT',
               help=_('Trait the fastboot image requires, so its servers '
                      'land on fastboot hosts.')),
    cfg.StrOpt('runner_roles', default='member',
               help=_('Comma-separated roles the trust delegates.')),
]


#: fastboot-notification-listener's options, in the same group.
listener_opts = [
    cfg.ListOpt('notification_topics',
                default=['versioned_notifications'],
                help=_('Topics fastboot-notification-listener consumes: '
                       'Nova\'s [notifications] '
                       'versioned_notifications_topics.')),
    cfg.StrOpt('notification_exchange',
               default='nova',
               help=_('Exchange the notifications are published on: '
                      'Nova\'s [DEFAULT] control_exchange, "nova" unless '
                      'changed. FastBootDriver publishes from nova-compute, '
                      'on the same exchange.')),
]


def _auth_group():
    return cfg.OptGroup(
        AUTH_GROUP, title=_('fastboot-runner service user'),
        help=_('keystoneauth options (auth_type = password, auth_url, '
               'username, password, project_name, user_domain_name, '
               'project_domain_name) and session options of the service '
               'user fastboot-runner acts as: the trustee of every '
               'batch\'s trust.'))


def register_opts(conf):
    group = _group()
    conf.register_group(group)
    conf.register_opts(batch_opts, group=group)
    ks_loading.register_auth_conf_options(conf, AUTH_GROUP)
    ks_loading.register_session_conf_options(conf, AUTH_GROUP)


def list_opts():
    return {_group(): batch_opts + listener_opts,
            _auth_group(): (ks_loading.get_session_conf_options() +
                            ks_loading.get_auth_common_conf_options() +
                            ks_loading.get_auth_plugin_conf_options(
                                'password'))}
