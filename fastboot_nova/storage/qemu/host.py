"""The two daemons of a qemu engine host and what they export.

The cache daemon holds every image's cache graph and serves it to local
VMs on ``<state_path>/nbd.sock``; with ``export_address`` set, the export
relay, a second qemu-storage-daemon, re-exports the caches to child hosts
over TCP with TLS-PSK (:mod:`.relay`). This module starts them, restores
what they export after a restart, and keeps the relay in step.
"""

import logging
import os

from fastboot_nova import exception
from fastboot_nova.storage import base
from fastboot_nova.storage.qemu import cachegroup
from fastboot_nova.storage.qemu import relay

LOG = logging.getLogger(__name__)


class HostDaemons:
    """The cache daemon and the export relay of one engine."""

    def __init__(self, opts, state, lock, daemon, relay_daemon, auth,
                 nbd_socket, relay_dir, tls_dir, restore_image):
        """Keep the engine's parts the daemons work with.

        :param lock: ``lock(kind, name)``, the engine's lock factory.
        :param restore_image: ``restore_image(qmp, image, entry, report)``
            re-creates a recorded image's graph in a fresh cache daemon.
        """
        self.opts = opts
        self.state = state
        self.lock = lock
        self.daemon = daemon
        self.relay = relay_daemon
        self.auth = auth
        self.nbd_socket = nbd_socket
        self.relay_dir = relay_dir
        self.tls_dir = tls_dir
        self.restore_image = restore_image

    def ensure(self):
        """Start the daemons that are not running and restore their exports.

        :returns: a ReconcileReport when a daemon was (re)started.
        """
        report = None
        if not self.daemon.is_running():
            with self.lock('daemon', 'qsd'):
                if not self.daemon.is_running():
                    report = self._start_daemon()
        elif not os.path.exists(self.nbd_socket):
            self._check_local_export()
        if self.opts.export_address and not self.relay.is_running():
            with self.lock('daemon', 'relay'):
                if not self.relay.is_running():
                    report = report or base.ReconcileReport()
                    self._start_relay(report)
        return report

    def _check_local_export(self):
        # The socket appears right after the daemon starts, under the
        # lock: a daemon still without it is not this version's.
        with self.lock('daemon', 'qsd'):
            if self.daemon.is_running() and \
                    not os.path.exists(self.nbd_socket):
                raise exception.DaemonError(
                    reason='the running qemu-storage-daemon (pid %s) does '
                           'not serve %s: an earlier version of fastboot '
                           'started it with its export on TCP. Stop it '
                           '(fastboot shutdown) when no VM uses it; the '
                           'next operation starts it afresh' % (
                               self.daemon.pid(), self.nbd_socket))

    def ensure_exports(self):
        """Keep the export relay in step with the cache daemon.

        Run by the host agent every round. A dead relay beside a live cache
        daemon is restarted with every export it had (it holds no data). A
        cache daemon that is gone stops the relay: children must stop
        taking this host for a live parent and fail over. The cache daemon
        itself is left to the next engine operation or reconcile.
        """
        if not self.opts.export_address:
            return None
        if self.daemon.pid() is None:
            # Only a process that is gone: a busy monitor is no reason to
            # take the exports away from the children.
            if self.relay.is_running():
                LOG.warning('The cache daemon is down: stopping the export '
                            'relay so that children fail over')
                self.relay.stop()
            return None
        if self.relay.is_running() or not self.daemon.is_running():
            return None
        with self.lock('daemon', 'relay'):
            if self.relay.is_running():
                return None
            report = base.ReconcileReport()
            self._start_relay(report)
        LOG.warning('Export relay restarted; exporting %s again',
                    ', '.join(report.relayed_images) or 'nothing')
        return report

    def _start_daemon(self):
        self.daemon.start()
        report = base.ReconcileReport(daemon_restarted=True)
        with self.daemon.qmp() as qmp:
            cachegroup.start_nbd_server(qmp, unix_path=self.nbd_socket)
            self.add_client_creds(qmp)
            st = self.state.read()
            for image, entry in sorted(st['images'].items()):
                self.restore_image(qmp, image, entry, report)
        return report

    def add_client_creds(self, qmp):
        """Credentials the cache presents to parent hosts' relays."""
        if self.auth is not None:
            cachegroup.add_psk_creds(qmp, relay.CLIENT_CREDS, 'client',
                                     self.auth.install(self.tls_dir),
                                     username=self.auth.identity,
                                     priority=self.auth.priority)

    def _start_relay(self, report):
        os.makedirs(self.relay_dir, mode=0o750, exist_ok=True)
        self.relay.start()
        try:
            self._setup_relay(report)
        except BaseException:
            # A relay without its server would look healthy to the next
            # caller and never be set up: the next one starts afresh.
            self.relay.stop()
            raise

    def _setup_relay(self, report):
        ports = list(range(self.opts.export_port_min,
                           self.opts.export_port_max + 1))
        previous = self.state.read().get('export', {}).get('port')
        if previous in ports:
            # Children already point at the old port.
            ports.remove(previous)
            ports.insert(0, previous)
        with self.relay.qmp() as qmp:
            tls_creds = None
            if self.auth is not None:
                tls_creds = relay.SERVER_CREDS
                cachegroup.add_psk_creds(qmp, tls_creds, 'server',
                                         self.auth.install(self.tls_dir),
                                         priority=self.auth.priority)
            else:
                LOG.warning('Exporting caches on %s without '
                            'authentication (export_auth = none)',
                            self.opts.export_address)
            address = cachegroup.start_nbd_server(
                qmp, host=self.opts.export_address, ports=ports,
                tls_creds=tls_creds)
            with self.state.update() as st:
                st['export'] = dict(address, auth='psk' if tls_creds
                                    else 'none')
            with self.daemon.qmp() as cache_qmp:
                cached = cachegroup.export_ids(cache_qmp)
            for image in sorted(self.state.read()['images']):
                if cachegroup.Nodes.of(image).export in cached:
                    self._relay_image(qmp, image, report)

    def _relay_image(self, qmp, image, report=None):
        try:
            relay.add_export(qmp, image, self.nbd_socket)
        except exception.FastbootException as e:
            LOG.error('Could not export image %s to other hosts: %s',
                      image, e.msg)
            return
        if report is not None:
            report.relayed_images.append(image)

    def relay_add(self, image):
        """Export ``image`` to other hosts if this host exports at all."""
        if self.opts.export_address and self.relay.is_running():
            with self.relay.qmp() as qmp:
                if relay.export_id(image) not in \
                        cachegroup.export_ids(qmp):
                    self._relay_image(qmp, image)

    def reconcile_relay(self, report):
        """Relay exactly the recorded images whose cache is exported."""
        if not self.opts.export_address:
            return
        with self.daemon.qmp() as qmp:
            cached = cachegroup.export_ids(qmp)
        st = self.state.read()
        with self.relay.qmp() as qmp:
            relayed = cachegroup.export_ids(qmp)
            wanted = {relay.export_id(image): image
                      for image in st['images']
                      if cachegroup.Nodes.of(image).export in cached}
            for export_id in sorted(relayed - set(wanted)):
                if cachegroup.owned(export_id):
                    cachegroup.del_export(qmp, export_id)
                    cachegroup.del_node(qmp, relay.node_of_export(export_id))
                    report.removed_orphan_nodes.append(export_id)
            for export_id, image in sorted(wanted.items()):
                if export_id not in relayed and \
                        image not in report.relayed_images:
                    self._relay_image(qmp, image, report)
