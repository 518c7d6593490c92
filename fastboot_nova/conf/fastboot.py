"""The ``[fastboot]`` option group: the host-side block engine."""

from oslo_config import cfg
from oslo_config import types

from fastboot_nova.conf import qemu
from fastboot_nova.i18n import _

GROUP_NAME = 'fastboot'

fastboot_group = cfg.OptGroup(
    GROUP_NAME,
    title=_('fastboot block engine options'),
    help=_('Options of the per-host block engine that serves many VMs from '
           'one shared, cached, read-only origin volume.'))

engine_opts = [
    cfg.BoolOpt('use_cachegroup',
                default=False,
                help=_('Attach volumes marked cacheable through the host '
                       'cache group: the origin volume is attached '
                       'read-only once per host and cached locally, so each '
                       'host pulls each block at most once.')),
    cfg.BoolOpt('use_cache_snapshot',
                default=False,
                help=_('Give each VM booted the fastboot way a private, '
                       'persistent copy-on-write snapshot over the cached '
                       'origin as its root disk, instead of a full copy of '
                       'the volume.')),
    cfg.BoolOpt('keep_idle_caches',
                default=False,
                help=_('Keep a volume\'s cache on the host after its last '
                       'server there is gone, warm for the next boot storm '
                       '(its origin is still disconnected and re-opened on '
                       'next use). By default the cache is removed with its '
                       'last user, freeing its space; with a coordinator '
                       'the host first leaves the volume\'s tree, and '
                       'child hosts reading from it move to another '
                       'source.')),
    cfg.StrOpt('backend',
               default='qemu',
               choices=[('qemu', _('Userspace: one qemu-storage-daemon per '
                                   'host with qcow2 caches and overlays. '
                                   'Needs only QEMU >= 7.2.')),
                        ('dm', _('Kernel: device-mapper cache and '
                                 'snapshot targets. Needs dm-mod, '
                                 'dm-cache and dm-snapshot.'))],
               help=_('Block engine backend.')),
    cfg.StrOpt('state_path',
               default='/var/lib/fastboot',
               help=_('Directory for the host-local state file, the cache '
                      'files, the per-VM snapshot files and the sockets of '
                      'the storage daemon. Unix sockets live here, so keep '
                      'the path short (at most 80 characters). The '
                      'FASTBOOT_STATE_PATH environment variable and the '
                      '--state-path CLI option override it.')),
    cfg.HostAddressOpt('export_address',
                       help=_('Address on which the host exports its caches '
                              'over NBD (read-only) to child hosts. Unset '
                              '(the default) exports only on a unix socket '
                              'under state_path: nothing is reachable from '
                              'the network. Local VM disks always use the '
                              'unix socket. The TCP export needs '
                              'credentials (see export_auth).')),
    cfg.StrOpt('export_auth',
               default='tls',
               deprecated_opts=[cfg.DeprecatedOpt('export_auth',
                                                  group='fastboot_dm')],
               choices=[('tls', _('NBD over TLS: only hosts holding the '
                                  'credentials read the exports, and a '
                                  'host reads only from parents holding '
                                  'them. The qemu backend uses pre-shared '
                                  'keys ([fastboot_qemu] export_psk_file), '
                                  'the dm backend X.509 certificates '
                                  '([fastboot_dm] export_tls_cert_file, '
                                  'export_tls_key_file, '
                                  'export_tls_ca_file).')),
                        ('psk', _('The former name of tls (qemu '
                                  'backend); the same meaning.')),
                        ('none', _('No authentication and no encryption: '
                                   'anyone who reaches export_address can '
                                   'read every cached image. Only for an '
                                   'isolated, trusted storage network.'))],
               help=_('How host-to-host exports are protected, on either '
                      'backend. With export_address set and tls, the '
                      'backend\'s credentials must be configured, or the '
                      'engine refuses to start. Replaces [fastboot_dm] '
                      'export_auth.')),
    cfg.PortOpt('export_port_min',
                default=10809,
                help=_('Lowest TCP port the cache export may listen on.')),
    cfg.PortOpt('export_port_max',
                default=10829,
                help=_('Highest TCP port the cache export may listen on. The '
                       'first free port in [export_port_min, '
                       'export_port_max] is used.')),
    cfg.ListOpt('coordinator_url',
                item_type=types.URI(schemes=['http', 'https']),
                help=_('Base URL of the fastboot coordinator (for example '
                       'http://controller:8790/v1), or a comma-separated '
                       'list of the URLs of its replicas: the host talks to '
                       'one and fails over to the next when it refuses the '
                       'connection, times out or answers 5xx, so it stays '
                       'registered while one replica is down. Replicas '
                       'share one database: the host token one issued is '
                       'valid on every other. Unset runs without '
                       'hierarchical attaching: every host reads from the '
                       'origin.')),
    cfg.FloatOpt('coordinator_timeout',
                 default=15.0,
                 min=1,
                 max=300,
                 help=_('Seconds to wait for one coordinator replica to '
                        'answer a request before failing over to the next. '
                        'Behind Keystone a replica validates the host\'s '
                        'token before it answers, which takes seconds on a '
                        'busy control plane; keep it below the '
                        'coordinator\'s host_timeout so that a hung replica '
                        'still leaves time to heartbeat through another.')),
    cfg.StrOpt('coordinator_secret',
               secret=True,
               help=_('Shared secret sent in X-Fastboot-Secret to a '
                      'coordinator running with auth_strategy = '
                      'shared_secret.')),
    cfg.StrOpt('host_name',
               sample_default='<the host name>',
               help=_('Name of this host in the coordinator. Defaults to '
                      'Nova\'s [DEFAULT] host under nova-compute, else to '
                      'the host name.')),
    cfg.StrOpt('failure_domain',
               help=_('Failure domain of this host (a rack or availability '
                      'zone label); the coordinator prefers parents in the '
                      'same domain.')),
    cfg.FloatOpt('heartbeat_interval',
                 default=2.0,
                 min=0.2,
                 max=60,
                 help=_('Seconds between two rounds of the host agent: a '
                        'heartbeat to the coordinator and a check that '
                        'every parent still answers.')),
]


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts: an OptGroup object keeps the
    # overrides of the options registered through it, and several
    # ConfigOpts (one per engine in tests and the demo) must not share them.
    conf.register_group(cfg.OptGroup(
        GROUP_NAME, title=fastboot_group.title, help=fastboot_group.help))
    conf.register_opts(engine_opts, group=GROUP_NAME)
    # The backend groups go with it: every user of [fastboot] (the CLI,
    # nova-compute, the agent) builds an engine.
    if not hasattr(conf, qemu.GROUP_NAME):
        qemu.register_opts(conf)


def set_overrides(conf, **overrides):
    """Override options by name, in whichever group holds them now.

    For tools and tests that name options without their group: the
    qemu-only options moved from ``[fastboot]`` to ``[fastboot_qemu]``.
    """
    groups = {opt.name: GROUP_NAME for opt in engine_opts}
    groups.update((opt.name, qemu.GROUP_NAME) for opt in qemu.qemu_opts)
    for key, value in overrides.items():
        conf.set_override(key, value, group=groups.get(key, 'fastboot_dm'))


def list_opts():
    return {fastboot_group: engine_opts}
