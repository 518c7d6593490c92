"""The ``[fastboot_dm]`` option group: the kernel (device-mapper) backend."""

from oslo_config import cfg

from fastboot_nova.i18n import _

GROUP_NAME = 'fastboot_dm'

dm_group = cfg.OptGroup(
    GROUP_NAME, title=_('fastboot kernel backend options'),
    help=_('Options of the dm backend ([fastboot] backend = dm).'))

dm_opts = [
    cfg.StrOpt('cache_device',
               help=_('Local block device (an SSD partition or LV) that '
                      'holds the host cache of every image: each image gets '
                      'a metadata and a data slice of it. Everything on it '
                      'is overwritten.')),
    cfg.IntOpt('cache_block_sectors',
               default=128,
               min=64,
               max=2 * 1024 * 1024,
               help=_('dm-cache block size in 512-byte sectors (a multiple '
                      'of 64): the unit the cache promotes from the '
                      'origin.')),
    cfg.StrOpt('cache_mode',
               default='writethrough',
               choices=['writethrough', 'passthrough'],
               help=_('dm-cache mode. VMs write to their own snapshots, '
                      'never to the cache, and writeback could lose data: '
                      'it is not offered.')),
    cfg.IntOpt('snapshot_chunk_sectors',
               default=16,
               min=8,
               max=1024 * 1024,
               help=_('dm-snapshot chunk size in 512-byte sectors (a power '
                      'of two): the unit a VM write copies.')),
]


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts, as in conf/fastboot.py.
    conf.register_group(cfg.OptGroup(GROUP_NAME, title=dm_group.title,
                                     help=dm_group.help))
    conf.register_opts(dm_opts, group=GROUP_NAME)


def list_opts():
    return {dm_group: dm_opts}
