"""The hierarchy benchmark's report: ratios from the measured figures."""

from oslotest import base

from gate.bench import hierarchy

RESULT = {
    'fanout': 2, 'rate': '100mbit', 'storm_hosts': 7,
    'growth': [
        {'hosts': 1, 'ok': 1, 'origin_egress_bytes': 4_500_000,
         'largest_ingress_bytes': 4_500_000},
        {'hosts': 7, 'ok': 7, 'origin_egress_bytes': 9_000_000,
         'largest_ingress_bytes': 4_600_000}],
    'fastboot': {'create_seconds': 2.0, 'boot_seconds': 28.0,
                 'total_seconds': 30.0, 'ok': 7,
                 'origin_egress_bytes': 9_000_000},
    'full_copy': {'copy_seconds': 80.0, 'total_seconds': 110.0, 'ok': 7,
                  'origin_egress_bytes': 900_000_000},
    'tls': {'size_bytes': 64 << 20, 'psk_seconds': 1.5,
            'none_seconds': 1.2},
}


class TestRender(base.BaseTestCase):

    def test_ratios(self):
        text = hierarchy.render(RESULT)
        # 9e6 / (2 x 4.6e6)
        self.assertIn('0.98', text)
        # egress at 7 hosts / at 1 host, hosts x7
        self.assertIn('egress at 7 hosts / at 1 hosts: 2.00 (hosts x7.0)',
                      text)
        # 30 s vs 110 s; 9e6 vs 9e8 bytes
        self.assertIn('0.273', text)
        self.assertIn('0.0100', text)
        self.assertIn('80.0 s copying', text)
        self.assertIn('psk/none 1.25', text)

    def test_main_refuses_bad_hosts(self):
        self.assertRaises(SystemExit, hierarchy.main, ['--hosts', 'a,b'])
