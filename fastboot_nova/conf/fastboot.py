"""The ``[fastboot]`` option group: the host-side block engine."""

from oslo_config import cfg

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
    cfg.IntOpt('cache_cluster_size',
               default=65536,
               min=4096,
               max=2 * 1024 * 1024,
               help=_('Cluster size in bytes of each host cache (a power of '
                      'two). The cache fetches from the origin in units of '
                      'this size: smaller clusters move fewer bytes for a '
                      'boot, larger ones mean fewer requests.')),
    cfg.IntOpt('cache_size_limit',
               default=0,
               min=0,
               help=_('Upper bound, in MiB, of the space all host caches '
                      'may take, counted as the full virtual size of each '
                      'cached image. 0 means only free disk space limits '
                      'the caches.')),
    cfg.HostAddressOpt('export_address',
                       help=_('Address on which the host exports its caches '
                              'over NBD (read-only) to child hosts. Unset '
                              '(the default) exports only on a unix socket '
                              'under state_path: nothing is reachable from '
                              'the network. Local VM disks always use the '
                              'unix socket. The TCP export needs a '
                              'pre-shared key (export_auth, '
                              'export_psk_file).')),
    cfg.StrOpt('export_auth',
               default='psk',
               choices=[('psk', _('NBD over TLS with a pre-shared key: '
                                  'the TCP export accepts only clients '
                                  'holding a key of export_psk_file, and '
                                  'this host uses its key to read from '
                                  'parent hosts.')),
                        ('none', _('No authentication and no encryption: '
                                   'anyone who reaches export_address can '
                                   'read every cached image. Only for an '
                                   'isolated, trusted storage network.'))],
               help=_('How host-to-host exports are protected. With '
                      'export_address set and export_auth = psk, '
                      'export_psk_file must be set, or the engine refuses '
                      'to start.')),
    cfg.StrOpt('export_psk_file',
               help=_('File of pre-shared keys for the host-to-host NBD '
                      'exports, in QEMU\'s format: one "identity:hexkey" '
                      'line per key, the key at least 32 hex digits (for '
                      'example: printf \'fastboot:%s\\n\' "$(openssl rand '
                      '-hex 32)"). Every host of a tree needs the key of '
                      'export_psk_identity. It must not be readable by group '
                      'or others.')),
    cfg.StrOpt('export_psk_identity',
               default='fastboot',
               help=_('Identity (a line of export_psk_file) this host '
                      'presents to its parent hosts.')),
    cfg.PortOpt('export_port_min',
                default=10809,
                help=_('Lowest TCP port the cache export may listen on.')),
    cfg.PortOpt('export_port_max',
                default=10829,
                help=_('Highest TCP port the cache export may listen on. The '
                       'first free port in [export_port_min, '
                       'export_port_max] is used.')),
    cfg.IntOpt('parent_reconnect_delay',
               default=5,
               min=0,
               max=300,
               help=_('Seconds the cache of an origin or parent reached over '
                      'NBD keeps retrying a lost connection before reads '
                      'fail with an I/O error.')),
    cfg.URIOpt('coordinator_url',
               schemes=['http', 'https'],
               help=_('Base URL of the fastboot coordinator (for example '
                      'http://controller:8790/v1). Unset runs without '
                      'hierarchical attaching: every host reads from the '
                      'origin.')),
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
    cfg.StrOpt('qemu_storage_daemon',
               default='qemu-storage-daemon',
               help=_('Name or absolute path of the qemu-storage-daemon '
                      'executable.')),
    cfg.StrOpt('qemu_img',
               default='qemu-img',
               help=_('Name or absolute path of the qemu-img executable.')),
    cfg.IntOpt('daemon_start_timeout',
               default=30,
               min=1,
               max=600,
               help=_('Seconds to wait for the storage daemon to answer on '
                      'its control socket after it is started.')),
]


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts: an OptGroup object keeps the
    # overrides of the options registered through it, and several
    # ConfigOpts (one per engine in tests and the demo) must not share them.
    conf.register_group(cfg.OptGroup(
        GROUP_NAME, title=fastboot_group.title, help=fastboot_group.help))
    conf.register_opts(engine_opts, group=GROUP_NAME)


def list_opts():
    return {fastboot_group: engine_opts}
