#!/usr/bin/env python3
"""Per-pass cost of the resource tracker's disk lookups, before and after.

Nova calls ``_get_instance_disk_info_from_config`` once per domain in each
resource tracker pass. Before issue 10 item 10 the driver listed every
engine disk for each domain (``engine.list()``); now it asks for one
(``engine.get_disk(name)``). This builds N thin VMs on the dm engine over
the unit tests' fake kernel (tests/unit/dm/fakes.py: privileged calls run
in-process and are counted) and measures one pass both ways in the same
run: privileged ``dmsetup status`` calls, other privileged calls, state
file reads, and wall time, with the ratio before/after.

Run from a checkout:  .tox/py3/bin/python tools/measure-disk-lookups.py
"""

import argparse
import os
import sys
import tempfile
import time
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from oslo_config import cfg  # noqa: E402

from fastboot_nova.conf import dm as dm_opts  # noqa: E402
from fastboot_nova.conf import fastboot as fastboot_conf  # noqa: E402
from fastboot_nova.storage.dm import engine as dm_engine  # noqa: E402
from fastboot_nova.storage import state as state_mod  # noqa: E402
from tests.unit.dm import fakes  # noqa: E402

ORIGIN, SSD = '/dev/vdb', '/dev/nvme0n1p2'


def build(n, state_path):
    priv = fakes.PrivsepFixture({ORIGIN: 131072, SSD: 4 * 2048 * 64})
    priv.setUp()
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    dm_opts.register_opts(conf)
    conf([])
    conf.set_override('cache_device', SSD, 'fastboot_dm')
    conf.set_override('snapshot_type', 'thin', 'fastboot_dm')
    engine = dm_engine.DmEngine(conf, state_path=state_path,
                                devices=fakes.FakeDevices(priv.kernel))
    names = ['vm-%04d' % i for i in range(n)]
    for name in names:
        engine.create(name, 'img', ORIGIN)
    return priv, engine, names


def one_pass(kernel, lookup, names):
    reads = []
    real_read = state_mod.StateFile.read

    def counting_read(self):
        reads.append(1)
        return real_read(self)

    before = len(kernel.calls)
    start = time.perf_counter()
    with mock.patch.object(state_mod.StateFile, 'read', counting_read):
        for name in names:
            lookup(name)
    elapsed = time.perf_counter() - start
    calls = [c[0] for c in kernel.calls[before:]]
    status = sum(1 for c in calls if c.startswith('dmsetup status'))
    return {'status': status, 'other_priv': len(calls) - status,
            'state_reads': len(reads), 'seconds': elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='en-lookups-') as tmp:
        priv, engine, names = build(args.servers, tmp)
        try:
            # Before: the driver listed every disk for each domain.
            before = one_pass(priv.kernel, lambda name: {
                d.path for d in engine.list()}, names)
            # After: one disk per domain.
            after = one_pass(priv.kernel, engine.get_disk, names)
        finally:
            priv.cleanUp()
    print('one resource tracker pass, %d servers, dm thin (fake kernel)'
          % args.servers)
    print('%-28s %12s %12s %8s' % ('', 'list/domain', 'get_disk', 'ratio'))
    for key, label in (('status', 'privileged dmsetup status'),
                       ('other_priv', 'other privileged calls'),
                       ('state_reads', 'state file reads'),
                       ('seconds', 'wall seconds')):
        b, a = before[key], after[key]
        fmt = '%-28s %12.3f %12.3f %8s' if key == 'seconds' else \
            '%-28s %12d %12d %8s'
        print(fmt % (label, b, a, ('%.1fx' % (b / a)) if a else '-'))


if __name__ == '__main__':
    main()
