"""The ``[fastboot_dm]`` option group: the kernel (device-mapper) backend."""

from oslo_config import cfg

from fastboot_nova.i18n import _

GROUP_NAME = 'fastboot_dm'

dm_group = cfg.OptGroup(
    GROUP_NAME, title=_('fastboot kernel backend options'),
    help=_('Options of the dm backend ([fastboot] backend = dm).'))

dm_opts = [
    cfg.ListOpt('cache_device',
                default=[],
                help=_('Local block device(s) (SSD partitions or LVs) that '
                       'hold the host cache of every image: each image gets '
                       'a metadata and a data slice. Several devices, comma '
                       'separated, are joined end to end by dm-linear into '
                       'one "SSD group"; list them in a fixed order by '
                       'stable names (/dev/disk/by-id/...). Everything on '
                       'them is overwritten.')),
    cfg.IntOpt('cache_block_sectors',
               default=128,
               min=64,
               max=2 * 1024 * 1024,
               help=_('dm-cache block size in 512-byte sectors (a multiple '
                      'of 64): the unit the cache promotes from the '
                      'origin.')),
    cfg.StrOpt('cache_mode',
               default='writethrough',
               choices=[('writethrough', _('every write reaches the origin '
                                           'before it completes (safe)')),
                        ('passthrough', _('the cache only serves blocks it '
                                          'holds; nothing is promoted')),
                        ('writeback', _('explicit opt-in, NOT recommended: '
                                        'a write completes in the cache '
                                        'device only, and is lost with it '
                                        'until written back'))],
               help=_('dm-cache mode. VMs write to their own copy-on-write '
                      'layers, never through the cache, so writeback gains '
                      'nothing today; it stays selectable for a cache '
                      'device trusted like the origin, logs a warning for '
                      'every image cached with it, and applies to images '
                      'added after the change.')),
    cfg.StrOpt('snapshot_type',
               default='thin',
               choices=[('thin', _('one dm-thin volume per VM in a '
                                   'thin-pool, the image cache as its '
                                   'external read-only origin')),
                        ('snapshot', _('one persistent dm-snapshot per VM, '
                                       'its copy-on-write store a sparse '
                                       'file'))],
               help=_('How each VM gets its private copy-on-write layer. '
                      'thin: a full pool makes writes fail with ENOSPC '
                      'until it is grown, and an origin read error fails '
                      'one write; with snapshot either one invalidates the '
                      'VM\'s snapshot and its data is lost. The type of a '
                      'VM is fixed when it is created.')),
    cfg.IntOpt('thin_pool_size_mib',
               default=20480,
               min=64,
               help=_('Size of the thin-pool data file '
                      '(<state_path>/thin/pool.data), allocated in full '
                      'when the pool is first made, so that running out '
                      'of it is an orderly ENOSPC and never a file system '
                      'error. Holds the blocks every VM of the host has '
                      'written.')),
    cfg.IntOpt('thin_block_sectors',
               default=128,
               min=128,
               max=2 * 1024 * 1024,
               help=_('dm-thin block size in 512-byte sectors (a multiple '
                      'of 128): the unit a first VM write copies from the '
                      'origin and allocates.')),
    cfg.IntOpt('snapshot_chunk_sectors',
               default=16,
               min=8,
               max=1024 * 1024,
               help=_('dm-snapshot chunk size in 512-byte sectors (a power '
                      'of two): the unit a VM write copies '
                      '(snapshot_type = snapshot).')),
    cfg.IntOpt('parent_timeout',
               default=10,
               min=1,
               max=300,
               help=_('Seconds a read from a parent host\'s export may go '
                      'unanswered before its path is failed and the read '
                      'is retried on the next parent, then on the origin. '
                      'A dead parent can stall reads this long: over TLS, '
                      'nbd-client does not always see the connection '
                      'close.')),
    cfg.ListOpt('export_allowed',
                default=['0.0.0.0/0', '::/0'],
                help=_('Client networks (CIDR) the nbd-servers of this '
                       'host\'s exports accept, when [fastboot] '
                       'export_address is set. Narrow it to the storage '
                       'network of the compute hosts.')),
    cfg.StrOpt('export_tls_cert_file',
               help=_('PEM X.509 certificate of this host, signed by '
                      'export_tls_ca_file: the server certificate of its '
                      'exports and the client certificate of its '
                      'connections to parents. Its subjectAltName must '
                      'hold the export address (or export_tls_hostname).')),
    cfg.StrOpt('export_tls_key_file',
               secret=True,
               help=_('PEM private key of export_tls_cert_file. Must not '
                      'be readable or writable by group or others (mode '
                      '0600). Never logged.')),
    cfg.StrOpt('export_tls_ca_file',
               help=_('PEM CA certificate that signs the certificates of '
                      'every host allowed to export to or read from this '
                      'one.')),
    cfg.StrOpt('export_tls_hostname',
               help=_('Name a parent\'s certificate must carry (DNS name '
                      'or IP address). Default: the address this host '
                      'connects to, so each parent certificate needs its '
                      'export address in its subjectAltName.')),
]


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts, as in conf/fastboot.py.
    conf.register_group(cfg.OptGroup(GROUP_NAME, title=dm_group.title,
                                     help=dm_group.help))
    conf.register_opts(dm_opts, group=GROUP_NAME)


def list_opts():
    return {dm_group: dm_opts}
