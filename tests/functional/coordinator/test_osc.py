"""``openstack fastboot batch ...`` through OpenStackShell itself, against
a real coordinator process and fastboot-runner (fake_openstack: token
auth and the cloud faked). The endpoint is given with --os-endpoint and
admin_token auth, which carries the token as X-Auth-Token; with a real
Keystone the plugin finds service type ``fastboot`` in the catalog."""

import io
import json

import fixtures

from openstackclient import shell

from tests.functional.coordinator import batch_processes


class TestOSC(batch_processes.BatchProcessTestCase):

    def setUp(self):
        super().setUp()
        self.snapshot = self.store.add_snapshot(batch_processes.PROJECT)

    def openstack(self, *argv, expect=0):
        app = shell.OpenStackShell()
        app.stdout = io.StringIO()
        # osc-lib reports errors on sys.stderr through logging.
        err = self.useFixture(fixtures.MockPatch('sys.stderr',
                                                 io.StringIO())).mock
        rc = app.run(['--os-auth-type', 'admin_token',
                      '--os-endpoint', self.url,
                      '--os-token', batch_processes.TOKEN] + list(argv))
        self.assertEqual(expect, rc, err.getvalue())
        return app.stdout.getvalue(), err.getvalue()

    def json(self, *argv):
        out, _err = self.openstack(*argv, '-f', 'json')
        return json.loads(out)

    def test_openstack_fastboot_batch(self):
        # One test method: OpenStackShell keeps the first --os-endpoint of
        # its process (seen with python-openstackclient 10.5), so a second
        # test in the same worker would talk to the first's coordinator.
        self.check_errors_are_clear()
        self.check_same_idempotency_key_same_batch()
        self.check_create_wait_list_show_timeline_delete()

    def check_create_wait_list_show_timeline_delete(self):
        self.process('runner').start()
        batch = self.json('fastboot', 'batch', 'create', '--snapshot',
                          self.snapshot, '--count', '4', '--flavor',
                          'm1.small', '--network', 'none', '--name', 'farm',
                          '--wait')
        self.assertEqual('ACTIVE', batch['state'])
        self.assertEqual({'ACTIVE': 4}, batch['server_states'])
        self.assertEqual(4, len(batch['servers']))
        listed = self.json('fastboot', 'batch', 'list')
        self.assertIn(batch['id'], [b['id'] for b in listed])
        shown = self.json('fastboot', 'batch', 'show', batch['id'])
        self.assertEqual(batch['origin_volume_id'],
                         shown['origin_volume_id'])
        rows = self.json('fastboot', 'batch', 'timeline', batch['id'])
        self.assertEqual(4, len(rows))
        for row in rows:
            self.assertGreaterEqual(row['ACTIVE'], row['origin_ready'])
        table, _ = self.openstack('fastboot', 'batch', 'timeline',
                                  batch['id'])
        self.assertIn('#', table)  # the bar chart
        self.assertIn('bar (', table)
        self.openstack('fastboot', 'batch', 'delete', '--purge', batch['id'])
        self.wait_state(batch['id'], ('DELETED',))
        self.assertEqual(0, len([
            s for s in self.store.read()['servers'].values()
            if s['name'].startswith('farm-')]))

    def check_errors_are_clear(self):
        out, err = self.openstack(
            'fastboot', 'batch', 'create', '--snapshot', self.snapshot,
            '--count', '0', '--flavor', 'm1.small', expect=1)
        self.assertIn('400', err)
        self.assertIn('count', err)
        other = self.store.add_snapshot('someone-else')
        out, err = self.openstack(
            'fastboot', 'batch', 'create', '--snapshot', other,
            '--count', '1', '--flavor', 'm1.small', expect=1)
        self.assertIn('404', err)
        self.assertEqual([], self.json('fastboot', 'batch', 'list'))

    def check_same_idempotency_key_same_batch(self):
        args = ('fastboot', 'batch', 'create', '--snapshot', self.snapshot,
                '--count', '2', '--flavor', 'm1.small',
                '--idempotency-key', 'farm-1')
        first = self.json(*args)
        again = self.json(*args)
        self.assertEqual(first['id'], again['id'])
        _out, err = self.openstack(*args[:-4], '--flavor', 'm1.tiny',
                                   '--idempotency-key', 'farm-1', expect=1)
        self.assertIn('409', err)
