"""The export relay: a host's caches re-exported to other hosts over TCP.

qemu-storage-daemon runs one NBD server, and TLS on it applies to every
client. Local VM disks must not need TLS (a guest's QEMU gets no
``tls-creds`` object from libvirt), so the cache daemon serves only its
unix socket, and a second, stateless daemon per host, the relay, serves
the network::

    cache daemon: ... <- copy-on-read -> NBD export on <state>/nbd.sock
    relay:        nbd client of that export (read-only)
                    -> NBD export on export_address:port (TLS-PSK)

Reads of child hosts still pass the cache's copy-on-read filter, so this
host's cache fills as its children read. The relay holds no data: the
engine re-creates its exports from the state file whenever it restarts.
"""

from fastboot_nova import exception
from fastboot_nova.storage.qemu import cachegroup

SERVER_CREDS = 'fbtls-server'
CLIENT_CREDS = 'fbtls-client'
# Why a child was refused (wrong key, identity, no TLS) ends up here.
TRACE_EVENTS = ('qio_channel_tls_handshake_fail',
                'nbd_negotiate_send_rep_err')


def trace_args(log_path):
    """``--trace`` arguments logging refused negotiations to a file."""
    args = []
    for event in TRACE_EVENTS:
        args += ['--trace', 'enable=%s,file=%s' % (event, log_path)]
    return args


def node(image):
    return 'fbl-%s' % cachegroup.Nodes.of(image).hash


def export_id(image):
    return 'fbx-%s' % cachegroup.Nodes.of(image).hash


def node_of_export(export):
    return 'fbl-' + export[4:]


def add_export(qmp, image, local_socket):
    """Re-export ``image`` of the cache daemon at ``local_socket``.

    No reconnect delay: while the cache daemon is down, a child's read
    fails at once and its quorum reads on from its next source.
    """
    qmp.execute('blockdev-add', driver='nbd', export=image,
                server={'type': 'unix', 'path': local_socket},
                **{'node-name': node(image), 'read-only': True,
                   'reconnect-delay': 0})
    try:
        qmp.execute('block-export-add', type='nbd', id=export_id(image),
                    name=image, writable=False,
                    **{'node-name': node(image)})
    except exception.FastbootException:
        cachegroup.del_node(qmp, node(image))
        raise


def remove_export(qmp, image):
    """Drop the relay export of ``image`` (and its clients), if any."""
    if export_id(image) in cachegroup.export_ids(qmp):
        cachegroup.del_export(qmp, export_id(image))
    cachegroup.del_node(qmp, node(image))
