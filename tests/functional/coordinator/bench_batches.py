"""Benchmark: ``POST /v1/batches`` latency to the 202.

``python -m tests.functional.coordinator.bench_batches [--requests 200]``
(``tox -e bench-batches``). A real fastboot-coordinator process on SQLite
(fake_openstack: token auth and the cloud faked, so the pre-flight calls
cost what a local fake costs, not what Cinder/Nova/Keystone would) is
sent N POSTs with distinct Idempotency-Keys over one HTTP connection;
the baseline, measured in the same run on the same kind of database, is
an in-process call that only persists the batch
(``BatchQueries.create``). Prints p50/p99 of both and their ratios.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid

from oslo_config import cfg
import requests

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator.db import migration
from tests.functional.coordinator import batch_processes


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 *
                                                   (len(ordered) - 1))))]


def baseline(n, workdir):
    conf = cfg.ConfigOpts()
    config.parse_args([], conf=conf, default_config_files=[])
    conf.set_override('state_path', workdir, group='coordinator')
    db = db_api.Database(conf)
    migration.upgrade(db.get_engine())
    queries = batch_db.BatchQueries(db)
    ctx = context.admin_context()
    times = []
    for _ in range(n):
        key = str(uuid.uuid4())
        start = time.perf_counter()
        queries.create(ctx, 'p', 'u', key, key, {'count': 1},
                       {'name': 'b', 'source_type': 'snapshot',
                        'source_id': str(uuid.uuid4()), 'count': 1,
                        'flavor': 'm1.small', 'priority': 10,
                        'trust_id': 't'})
        times.append(time.perf_counter() - start)
    db.dispose()
    return times


class _Harness(batch_processes.BatchProcessTestCase):
    def runTest(self):
        pass


def api(n):
    harness = _Harness()
    harness.setUp()
    try:
        snapshot = harness.store.add_snapshot(batch_processes.PROJECT)
        body = {'source': {'volume_snapshot_id': snapshot}, 'count': 1,
                'flavor': 'm1.small', 'name': 'bench', 'networks': 'none'}
        session = requests.Session()
        headers = {'X-Auth-Token': batch_processes.TOKEN,
                   'Content-Type': 'application/json'}
        times = []
        for _ in range(n):
            headers['Idempotency-Key'] = str(uuid.uuid4())
            start = time.perf_counter()
            resp = session.post(harness.url + '/v1/batches',
                                data=json.dumps(body), headers=headers,
                                timeout=60)
            times.append(time.perf_counter() - start)
            assert resp.status_code == 202, resp.text
        return times
    finally:
        harness.doCleanups()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        base = baseline(args.requests, workdir)
    post = api(args.requests)
    result = {'requests': args.requests}
    for name, values in (('persist_only', base), ('post_202', post)):
        result[name] = {'p50_ms': round(statistics.median(values) * 1e3, 2),
                        'p99_ms': round(percentile(values, 99) * 1e3, 2)}
    result['ratio_p50'] = round(result['post_202']['p50_ms'] /
                                result['persist_only']['p50_ms'], 2)
    result['ratio_p99'] = round(result['post_202']['p99_ms'] /
                                result['persist_only']['p99_ms'], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('OS_LOG_CAPTURE', '0')
    raise SystemExit(main())
