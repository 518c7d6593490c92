"""Fastboot against the stock boot from a volume snapshot (issue 11).

Four servers three ways in one ministack (``ministack.scenarios.stock``):
fastboot (one origin volume), stock with RBD clones (a volume per server,
copy-on-write: cheap) and stock with flattened volumes (a full copy per
server). Asserts behaviour: every server ACTIVE with the right checksum
on its console, a volume per stock server, fastboot one volume, nothing
left. The figures go to ``$MINISTACK_STOCK_REPORT`` (default
``<run dir>/stock-comparison.json``) and stdout; ratios are reported, not
asserted (timings on a shared 2-core machine).
"""

import json

from ministack.scenarios import stock
from tests.ministack import base


class TestStockComparison(base.MinistackTestCase):

    # Twelve boots and two 4-volume sets (6.5 min measured) would take
    # .ci/run past its 60 minutes; fastboot's boot from a snapshot runs in
    # CI through test_volume_boot, test_batch and test_dashboard.
    @base.full_only('not run (6.5 min, over .ci/run\'s time budget); '
                    'bash tools/run-demo.sh --openstack --stock prints the '
                    'same figures')
    def test_fastboot_vs_stock_clone_vs_stock_flatten(self):
        figures = stock.compare(self.stack, count=4)
        self.assertEqual(1, figures['fastboot']['volumes_created'])
        for way in ('stock_clone', 'stock_flatten'):
            self.assertEqual(4, figures[way]['volumes_created'], way)
            self.assertEqual(0, figures[way]['volumes_left'], way)
        # Behaviour, not speed: a flattened volume is a full copy, so the
        # flatten way writes at least the 4 copies' data; a clone copies
        # nothing at creation.
        self.assertGreater(figures['stock_flatten']['bytes_written'],
                           figures['stock_clone']['bytes_written'])
        with open(figures['report']) as f:
            written = json.load(f)
        self.assertEqual(figures['ratios'], written['ratios'])
        print(stock.table(figures))
