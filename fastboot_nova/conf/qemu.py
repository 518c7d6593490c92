"""The ``[fastboot_qemu]`` option group: the userspace (qemu) backend.

These options were in ``[fastboot]`` before; the old names still work
there (``deprecated_group``), with a deprecation warning.
"""

from oslo_config import cfg

from fastboot_nova.i18n import _

GROUP_NAME = 'fastboot_qemu'

qemu_group = cfg.OptGroup(
    GROUP_NAME, title=_('fastboot userspace backend options'),
    help=_('Options of the qemu backend ([fastboot] backend = qemu): its '
           'qemu-storage-daemon, the qcow2 caches and the pre-shared keys '
           'of its host-to-host exports.'))

qemu_opts = [
    cfg.IntOpt('cache_cluster_size',
               deprecated_group='fastboot',
               default=65536,
               min=4096,
               max=2 * 1024 * 1024,
               help=_('Cluster size in bytes of each host cache (a power of '
                      'two). The cache fetches from the origin in units of '
                      'this size: smaller clusters move fewer bytes for a '
                      'boot, larger ones mean fewer requests.')),
    cfg.IntOpt('cache_size_limit',
               deprecated_group='fastboot',
               default=0,
               min=0,
               help=_('Upper bound, in MiB, of the space all host caches '
                      'may take, counted as the full virtual size of each '
                      'cached image. 0 means only free disk space limits '
                      'the caches.')),
    cfg.BoolOpt('direct_complete_cache',
                default=True,
                help=_('Once prefetch has copied every block of an image into '
                       'its host cache, seal the cache (read-only, no '
                       'copy-on-read, no link to the origin) and give VMs '
                       'created from then on the cache file itself as their '
                       'qcow2 backing, so their reads no longer pass through '
                       'qemu-storage-daemon and NBD: reads close to those of '
                       'a qcow2 overlay on a local file, no daemon CPU '
                       '(tox -e bench-steady). Sealing drops the '
                       'export for a moment: running VMs reconnect within '
                       'parent_reconnect_delay. Set to false to keep every '
                       'VM on the daemon\'s NBD export.')),
    cfg.StrOpt('export_psk_file',
               deprecated_group='fastboot',
               help=_('File of pre-shared keys for the host-to-host NBD '
                      'exports, in QEMU\'s format: one "identity:hexkey" '
                      'line per key, the key at least 32 hex digits (for '
                      'example: printf \'fastboot:%s\\n\' "$(openssl rand '
                      '-hex 32)"). Every host of a tree needs the key of '
                      'export_psk_identity. It must not be readable by group '
                      'or others.')),
    cfg.StrOpt('export_psk_identity',
               deprecated_group='fastboot',
               default='fastboot',
               help=_('Identity (a line of export_psk_file) this host '
                      'presents to its parent hosts.')),
    cfg.StrOpt('export_tls_priority',
               default='NORMAL:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305'
                       ':+AES-256-GCM',
               help=_('GnuTLS priority string of the TLS-PSK host-to-host '
                      'exports, both ends (QEMU appends the PSK key '
                      'exchanges). The default puts AES-128-GCM first: '
                      'with a pre-shared key TLS 1.3 can only use the '
                      'SHA-256 suites, and GnuTLS\'s NORMAL order then '
                      'picks ChaCha20-Poly1305: reads cost 2.6-4.5x plain '
                      'NBD on hosts with hardware AES, 1.3-1.4x with '
                      'AES-128-GCM (tox -e bench-steady -- --tls). Empty '
                      'keeps '
                      'QEMU\'s default.')),
    cfg.IntOpt('parent_reconnect_delay',
               deprecated_group='fastboot',
               default=5,
               min=0,
               max=300,
               help=_('Seconds the cache of an origin or parent reached over '
                      'NBD keeps retrying a lost connection before reads '
                      'fail with an I/O error.')),
    cfg.StrOpt('qemu_storage_daemon',
               deprecated_group='fastboot',
               default='qemu-storage-daemon',
               help=_('Name or absolute path of the qemu-storage-daemon '
                      'executable.')),
    cfg.StrOpt('qemu_img',
               deprecated_group='fastboot',
               default='qemu-img',
               help=_('Name or absolute path of the qemu-img executable.')),
    cfg.StrOpt('rbd_ceph_conf',
               help=_('Ceph configuration file the storage daemon reads '
                      'RBD origins (Cinder rbd volumes) with; it names the '
                      'keyring of the client Cinder gives (auth_username). '
                      'Default: /etc/ceph/<cluster_name>.conf, the cluster '
                      'named in the connection info.')),
    cfg.StrOpt('client_group',
               help=_('Group the VMs\' QEMU runs in (libvirt-qemu on Debian '
                      'and Ubuntu, qemu on Fedora/RHEL), when it is not '
                      'root: the state path, its vms directory (mode 0750) '
                      'and the NBD socket (0770) are given to it, so that '
                      'QEMU can open a VM disk and its backing export. '
                      'Unset: left root-only.')),
    cfg.IntOpt('daemon_start_timeout',
               deprecated_group='fastboot',
               default=30,
               min=1,
               max=600,
               help=_('Seconds to wait for the storage daemon to answer on '
                      'its control socket after it is started.')),
]


def register_opts(conf):
    # A fresh OptGroup per ConfigOpts, as in conf/fastboot.py.
    conf.register_group(cfg.OptGroup(GROUP_NAME, title=qemu_group.title,
                                     help=qemu_group.help))
    conf.register_opts(qemu_opts, group=GROUP_NAME)


def list_opts():
    return {qemu_group: qemu_opts}
