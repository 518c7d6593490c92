"""Faults during a boot of four fastboot servers (issue 11).

- a nova-compute killed (SIGKILL) while a server spawns on it, then
  started again: every server ends ACTIVE or ERROR (with a fault, or with
  none on the killed host: Nova's restart), and once they are deleted
  nothing is left: no libvirt domain, no instance directory (overlay), no
  cache, no attachment on the origin volume;
- one coordinator replica killed mid-boot: the computes fail over to the
  other, all ACTIVE; then both replicas stopped mid-boot: each host's
  cache reads from the origin on its own, all ACTIVE.

Each test boots from one origin volume (a clone of one snapshot) and
restarts what it stopped, also when it fails.
"""

import json
import os
import subprocess
import tempfile
import time
import uuid

from ministack import control
from ministack import layout as layout_mod
from ministack import proc
from ministack.scenarios import cloud as cloud_mod
from ministack.services import cinder
from ministack.services import coordinator
from tests.ministack import base

MID_BOOT_STATES = ('spawning', 'block_device_mapping', 'networking')


class TestFaults(base.MinistackTestCase):

    def setUp(self):
        super().setUp()
        self.cloud = cloud_mod.Cloud(self.stack)
        self.tag = uuid.uuid4().hex[:8]
        self.guest, kernel, ramdisk = self.cloud.ensure_guest()
        tmp = tempfile.mkdtemp(prefix='fbms-', dir='/tmp')
        self.addCleanup(subprocess.run, ['rm', '-rf', tmp])
        src = self.cloud.guest_volume(self.guest, 'ms-fsrc-' + self.tag)
        self.addCleanup(self._quiet, 'volume', 'delete', src)
        snap = self.cloud.openstack('volume', 'snapshot', 'create',
                                    '--volume', src,
                                    'ms-fsnap-' + self.tag)['id']
        self.addCleanup(self._quiet, 'volume', 'snapshot', 'delete', snap)
        self.cloud.wait_status('volume snapshot', snap)
        self.origin = self.cloud.openstack(
            'volume', 'create', '--snapshot', snap, '--size',
            str(self.cloud.size_gib(self.guest)), '--type',
            cinder.MULTIATTACH_TYPE, '--property', 'fastboot_cacheable=true',
            'ms-forigin-' + self.tag)['id']
        self.addCleanup(self._quiet, 'volume', 'delete', self.origin)
        self.cloud.wait_status('volume', self.origin)
        stub = os.path.join(tmp, 'stub.raw')
        with open(stub, 'wb') as f:
            f.write(b'\0' * 512)
        self.image = self.cloud.openstack(
            'image', 'create', 'ms-ffb-' + self.tag, '--disk-format', 'raw',
            '--container-format', 'bare', '--file', stub,
            '--property', 'fastboot_origin_volume=%s' % self.origin,
            '--property', 'kernel_id=%s' % kernel,
            '--property', 'ramdisk_id=%s' % ramdisk,
            '--property', 'os_command_line=%s' % cloud_mod.COMMAND_LINE)[
                'id']
        self.addCleanup(self._quiet, 'image', 'delete', self.image)
        self.domains_before = self.cloud.domains()

    def _quiet(self, *args):
        self.cloud.openstack(*args, parse=False, check=False, timeout=600)

    def _restart_later(self, name):
        """Start ``name`` again at cleanup if the test left it stopped."""
        self.addCleanup(lambda: proc.running(self.layout, name) or
                        control.start(self.stack, name))

    def _create(self, name):
        self.cloud.openstack('server', 'create', '--image', self.image,
                             '--flavor', 'ms.tiny', '--nic', 'none',
                             '--min', '4', '--max', '4', name, parse=False)
        self.addCleanup(self._delete_named, name)

    def _delete_named(self, name):
        ids = [s['ID'] for s in self.cloud.servers(name)]
        if ids:
            self._quiet('server', 'delete', '--wait', *ids)

    def _create_caught_mid_boot(self, prefix, state=None, attempts=3):
        """Boot four; (name, the row of one seen booting, in ``state``).

        A spawn takes 2-13 s here and a server list 2-3 s, so a poll can
        miss every boot: then the four are deleted and booted again.
        """
        for attempt in range(1, attempts + 1):
            name = '%s%s-%d' % (prefix, self.tag, attempt)
            self._create(name)
            server = self._wait_mid_boot(name, state)
            if server is not None:
                return name, server
            self._delete_named(name)
        self.fail('no server of %d boots of four seen %s' % (
            attempts, state or 'booting'))

    def _wait_mid_boot(self, name, state=None):
        """A server booting (in task ``state``) on a host.

        None once all four have settled without one seen.
        """
        states = MID_BOOT_STATES if state is None else (state,)

        def booting_or_settled():
            servers = self.cloud.servers(name)
            for s in servers:
                if s.get('Task State') in states and s.get('Host'):
                    return s
            if len(servers) == 4 and not any(
                    s.get('Task State') or s['Status'] == 'BUILD'
                    for s in servers):
                return 'settled'
            return None
        found = self.cloud.wait_for('a server of %s booting' % name,
                                    booting_or_settled, timeout=900,
                                    interval=0.5)
        return None if found == 'settled' else found

    def _wait_settled(self, name, timeout=1800):
        def settled():
            servers = self.cloud.servers(name)
            done = all(s['Status'] in ('ACTIVE', 'SHUTOFF', 'ERROR')
                       and not s.get('Task State') for s in servers)
            return servers if done and len(servers) == 4 else None
        return self.cloud.wait_for('%s settled' % name, settled,
                                   timeout=timeout, interval=3)

    def _assert_all_active(self, servers):
        self.assertEqual(['ACTIVE'] * 4, [
            'ACTIVE' if s['Status'] in ('ACTIVE', 'SHUTOFF') else s['Status']
            for s in servers], servers)
        self.cloud.check_consoles(servers, self.guest.payload_sha256)

    def _caches(self, host):
        state = self.layout.data('compute-' + host) / 'fb'
        out = subprocess.run(
            [str(self.layout.bin('fastboot')), '--state-path', str(state),
             'image', 'list', '-f', 'json'], capture_output=True, text=True,
            env=dict(os.environ, **self.stack.venv_env()), timeout=120)
        self.assertEqual(0, out.returncode, out.stderr)
        return json.loads(out.stdout)

    def _delete_and_check_clean(self, servers):
        self.cloud.openstack('server', 'delete', '--wait',
                             *[s['ID'] for s in servers], parse=False,
                             timeout=1800)
        self.assertEqual(self.domains_before, self.cloud.domains())
        for s in servers:
            for host in layout_mod.COMPUTES:
                path = (self.layout.data('compute-' + host) / 'instances'
                        / s['ID'])
                self.assertFalse(path.exists(), path)
        for host in layout_mod.COMPUTES:
            self.assertEqual([], self._caches(host), host)

        def detached():
            vol = self.cloud.openstack('volume', 'show', self.origin)
            return vol['status'] == 'available' and not vol['attachments']
        self.cloud.wait_for('origin %s detached' % self.origin, detached,
                            timeout=300)

    def _wait_compute_up(self, host):
        def up():
            rows = self.cloud.openstack('compute', 'service', 'list',
                                        '--service', 'nova-compute',
                                        '--host', host, user='admin')
            return rows and rows[0]['State'] == 'up'
        self.cloud.wait_for('nova-compute on %s up' % host, up,
                            timeout=600, interval=5)

    def test_compute_killed_mid_boot_and_restarted(self):
        started = time.monotonic()
        name, server = self._create_caught_mid_boot('ms-fk', 'spawning')
        host = server['Host']
        service = 'nova-compute-' + host
        self._restart_later(service)
        self.assertTrue(control.stop(self.stack, service, kill=True))
        time.sleep(10)
        control.start(self.stack, service)
        self._wait_compute_up(host)
        servers = self._wait_settled(name)
        for s in servers:
            if s['Status'] == 'ERROR':
                fault = self.cloud.openstack('server', 'show', s['ID'],
                                             user='admin').get('fault')
                # A failed build records a fault, except Nova's own restart
                # path: nova-compute's init_host sets a server it was
                # building to ERROR with none (_init_instance, "Instance
                # failed to spawn correctly"), so only on the killed host.
                if not fault:
                    self.assertEqual(host, s['Host'], s)
            else:
                self.cloud.check_consoles([s], self.guest.payload_sha256)
        print('compute fault: %s in %.0f s' % (
            sorted(s['Status'] for s in servers),
            time.monotonic() - started))
        self._delete_and_check_clean(servers)

    def test_coordinator_replica_killed_then_both_stopped(self):
        started = time.monotonic()
        first, second = ('fastboot-' + r for r in coordinator.REPLICAS)
        self._restart_later(first)
        self._restart_later(second)
        # One replica killed mid-boot: the other serves.
        name, _server = self._create_caught_mid_boot('ms-fr')
        self.assertTrue(control.stop(self.stack, first, kill=True))
        servers = self._wait_settled(name)
        self._assert_all_active(servers)
        self._delete_and_check_clean(servers)
        control.start(self.stack, first)
        proc.wait(self.layout, first, proc.http_ok(
            self.layout.url(coordinator.REPLICAS[0], '/')), timeout=300)
        # Both stopped mid-boot: each host's cache reads the origin.
        name, _server = self._create_caught_mid_boot('ms-fs')
        control.stop(self.stack, first)
        control.stop(self.stack, second)
        servers = self._wait_settled(name)
        self._assert_all_active(servers)
        for host in {s['Host'] for s in servers}:
            caches = self._caches(host)
            self.assertEqual(['cinder-' + self.origin],
                             [c['name'] for c in caches], caches)
            self.assertTrue(caches[0]['location'].startswith('rbd://'))
        self._delete_and_check_clean(servers)
        for replica in (first, second):
            control.start(self.stack, replica)
        print('coordinator faults: %.0f s' % (time.monotonic() - started))
