"""Boot batches end to end (issue 12) on the real services of a ministack.

As the demo user, through the real ``openstack`` CLI and the catalog's
``fastboot`` endpoint: ``openstack fastboot batch create --snapshot S
--count 4 --wait`` -> fastboot-runner prepares the origin volume and the
fastboot image (Cinder, Glance) and creates the servers through Nova ->
four real guests ACTIVE with the payload checksum on their consoles; the
timeline holds Nova's phases (versioned notifications through RabbitMQ
and fastboot-notification-listener) and FastBootDriver's own (cache
attach, overlay); a second batch of the same snapshot reuses the origin;
``batch delete`` removes the servers and keeps the origin, ``--purge``
removes it.

One batch of four serves every assertion about a batch (CI has 2 cores).
"""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time

from testtools import content

from tests.ministack import base
from tests.ministack import batch_helpers

#: Phases in the order a server goes through them (batch timeline).
FASTBOOT_ORDER = ('requested', 'block_device', 'cache_attached',
                  'overlay_created', 'ACTIVE')
NOVA_ORDER = ('scheduled', 'block_device', 'ACTIVE')


class TestBatch(batch_helpers.BatchScenarioMixin, base.MinistackTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='fbmsb-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def timeline_text(self, batch_id):
        env = dict(os.environ, **self.stack.venv_env(),
                   **self.stack.openrc('demo'))
        return subprocess.run(
            [str(self.layout.bin('openstack')), 'fastboot', 'batch',
             'timeline', batch_id, '--max-width', '200'],
            capture_output=True, text=True, env=env, timeout=300).stdout

    def test_batch_of_four_timeline_reuse_delete_purge(self):
        guest, snap, _images = self.bootable_snapshot()
        domains_before = self.libvirt_domains()

        start = time.monotonic()
        batch = self.batch('create', '--snapshot', snap, '--count', '4',
                           '--flavor', 'ms.tiny', '--network', 'none',
                           '--name', 'msb', '--wait', '--wait-timeout',
                           '1800', timeout=1900)
        elapsed = time.monotonic() - start
        bid = batch['id']
        self.addCleanup(self.quiet, 'fastboot', 'batch', 'delete',
                        '--purge', bid)
        self.assertEqual('ACTIVE', batch['state'], batch)
        shown = self.batch('show', bid)
        self.assertEqual(4, shown['count'])
        self.assertEqual({'ACTIVE': 4}, shown['server_states'])
        origin, image = shown['origin_volume_id'], shown['image_id']
        self.assertTrue(origin and image, shown)

        # Four real guests, ACTIVE (or already powered off after printing
        # their checksum), booted from the origin.
        servers = self.batch_servers(bid)
        self.assertEqual(4, len(servers), servers)
        for server in servers.values():
            self.assertIn(server['Status'], ('ACTIVE', 'SHUTOFF'), server)
        self.assert_consoles(guest, servers)
        volume = self.openstack('volume', 'show', origin)
        self.assertTrue(volume['multiattach'], volume)
        self.assertEqual('true', str(volume['bootable']).lower())
        fb_image = self.openstack('image', 'show', image)
        self.assertEqual(origin, fb_image['properties'][
            'fastboot_origin_volume'])

        # The timeline: Nova's phases and fastboot's, per server, ordered.
        timeline = self.batch('timeline', bid)
        self.assertEqual(4, len(timeline), timeline)
        for row in timeline:
            self.assertEqual('ACTIVE', row['state'], row)
            for order in (FASTBOOT_ORDER, NOVA_ORDER):
                times = [row[p] for p in order]
                self.assertNotIn(None, times, (order, row))
                self.assertEqual(sorted(times), times, (order, row))
            self.assertLessEqual(row['origin_ready'], row['requested'], row)
        table = self.timeline_text(bid)
        self.addDetail('timeline', content.text_content(table))
        self._write('batch-timeline', {
            'batch': bid, 'seconds_to_all_active': round(elapsed, 1),
            'load_average': batch_helpers.load_average(),
            'timeline': timeline, 'table': table})

        # A second batch of the same snapshot: the same origin and image.
        second = self.batch('create', '--snapshot', snap, '--count', '1',
                            '--flavor', 'ms.tiny', '--network', 'none',
                            '--name', 'msb2', '--wait', '--wait-timeout',
                            '1800', timeout=1900)
        self.addCleanup(self.quiet, 'fastboot', 'batch', 'delete',
                        '--purge', second['id'])
        self.assertEqual('ACTIVE', second['state'], second)
        self.assertEqual((origin, image), (second['origin_volume_id'],
                                           second['image_id']))

        # Delete the first: its servers go, the origin stays.
        self.batch('delete', bid, parse=False)
        self.wait_for('batch %s DELETED' % bid, lambda: self.batch(
            'show', bid)['state'] == 'DELETED', timeout=600)
        self.wait_for('the servers of %s gone' % bid, lambda: not (
            set(servers) & {s['ID'] for s in self.openstack(
                'server', 'list', '--all-projects', user='admin')}),
            timeout=900)
        # Attached to the second batch's server, or not any more.
        self.assertIn(self.openstack('volume', 'show', origin)['status'],
                      ('available', 'in-use'))
        self.openstack('image', 'show', image)

        # Delete the second with --purge: the origin and image go too.
        second_servers = self.batch_servers(second['id'])
        self.batch('delete', '--purge', second['id'], parse=False)
        self.wait_for('batch %s DELETED' % second['id'], lambda: self.batch(
            'show', second['id'])['state'] == 'DELETED', timeout=600)
        self.wait_for('the origin volume deleted', lambda: origin not in {
            v['ID'] for v in self.openstack('volume', 'list')}, timeout=900)
        self.assertNotIn(image, {i['ID'] for i in self.openstack(
            'image', 'list')})
        self.assertFalse(set(second_servers) & {s['ID'] for s in
                         self.openstack('server', 'list', '--all-projects',
                                        user='admin')})
        self.wait_for('no domain left', lambda: (
            self.libvirt_domains() == domains_before), timeout=300)

    def _write(self, name, data):
        os.makedirs(batch_helpers.OUTPUT, exist_ok=True)
        path = os.path.join(batch_helpers.OUTPUT, '%s-%s.json' % (
            name, datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%S')))
        with open(path, 'w') as f:
            json.dump(data, f, indent=2)
        print(json.dumps({k: v for k, v in data.items()
                          if k not in ('timeline', 'table')}))
        print(data.get('table', ''))
