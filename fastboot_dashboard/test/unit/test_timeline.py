"""The server-side SVG timeline."""

import re

from django.test import SimpleTestCase

from fastboot_dashboard.content.batches import timeline


def server(index, start, active=None, error=None):
    phases = {'accepted': '2026-12-03T12:00:00Z',
              'requested': '2026-12-03T12:00:%02dZ' % start,
              'scheduled': '2026-12-03T12:00:%02dZ' % (start + 1),
              'cache_attached': '2026-12-03T12:00:%02dZ' % (start + 2)}
    if active is not None:
        phases['ACTIVE'] = '2026-12-03T12:00:%02dZ' % active
    if error is not None:
        phases['ERROR'] = '2026-12-03T12:00:%02dZ' % error
    return {'id': 'srv-%d' % index, 'index': index,
            'state': 'ACTIVE' if active else 'ERROR', 'phases': phases}


class TimelineTests(SimpleTestCase):

    def test_rows_sorted_by_start_and_split_into_phases(self):
        data = {'start': '2026-12-03T12:00:00Z',
                'servers': [server(0, 5, active=20), server(1, 1, active=9)]}
        rows = timeline.rows(data)
        self.assertEqual(['srv-1', 'srv-0'], [r['id'] for r in rows])
        groups = [g for g, _p, _b, _e in rows[0]['segments']]
        self.assertEqual(['origin', 'scheduled', 'cache', 'spawn'], groups)
        self.assertEqual((1.0, 2.0), rows[0]['segments'][1][2:])

    def test_percentiles(self):
        servers = [server(i, 1, active=10 + i) for i in range(10)]
        stats = timeline.summary({'start': '2026-12-03T12:00:00Z',
                                  'servers': servers})
        self.assertEqual(14.0, stats['p50'])
        self.assertEqual(19.0, stats['p99'])
        self.assertEqual(10, stats['active'])
        self.assertIsNone(timeline.percentile([], 50))

    def test_svg_marks_errors_and_escapes(self):
        data = {'start': '2026-12-03T12:00:00Z',
                'servers': [server(0, 1, active=9), server(1, 1, error=7)]}
        svg = timeline.render_svg(data, {'srv-0': '<script>x</script>'})
        self.assertTrue(svg.startswith('<svg'))
        self.assertIn('fastboot-phase-error', svg)
        self.assertNotIn('<script>', svg)
        self.assertEqual(2, svg.count('class="fastboot-bar"'))

    def test_500_servers_stay_readable(self):
        servers = [server(i, i % 50, active=(i % 50) + 5)
                   for i in range(500)]
        svg = timeline.render_svg({'start': '2026-12-03T12:00:00Z',
                                   'servers': servers})
        self.assertEqual(500, svg.count('class="fastboot-bar"'))
        height = int(re.search(r'height="(\d+)"', svg).group(1))
        self.assertLess(height, 2000)
        self.assertLess(len(svg), 1_500_000)

    def test_long_names_keep_their_end(self):
        self.assertEqual('short', timeline._short('short'))
        label = timeline._short('farm-8e1f5b0c-0d4e-4c34-12')
        self.assertEqual(18, len(label))
        self.assertTrue(label.endswith('4c34-12'))

    def test_no_servers_yet(self):
        self.assertIn('No server has been requested yet',
                      timeline.render_svg({'servers': []}))


class SnapshotActionTests(SimpleTestCase):

    def test_row_action_added_once_to_volume_snapshots(self):
        from fastboot_dashboard.content.batches import snapshot_action
        from openstack_dashboard.dashboards.project.snapshots import tables
        snapshot_action.register()
        snapshot_action.register()
        names = [a.name for a in
                 tables.VolumeSnapshotsTable._meta.row_actions]
        self.assertEqual(1, names.count('fastboot_boot'))
        self.assertIn('fastboot_boot',
                      tables.VolumeSnapshotsTable.base_actions)

    def test_row_action_links_to_the_form(self):
        from fastboot_dashboard.content.batches import snapshot_action
        from fastboot_dashboard.test import helpers
        action = snapshot_action.BootFromSnapshot()
        snapshot = type('Snapshot', (), {'id': helpers.SNAPSHOT_ID,
                                         'status': 'available'})()
        self.assertEqual(
            '/project/fastboot_batches/create/?snapshot_id=%s'
            % helpers.SNAPSHOT_ID, action.get_link_url(snapshot))
