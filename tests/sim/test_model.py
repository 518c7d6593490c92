"""The storm model against cases whose answer is known exactly."""

import gzip
import json
import os
import tempfile
import unittest

import simpy

from simulation import model
from simulation import ps as ps_mod
from simulation import traces

MB = 10 ** 6
RATE = 8e6           # 1 MB/s
OVH = model.WIRE_OVERHEAD


def one_read(size, cpu=0.0, image=64 * MB):
    """A boot that reads ``size`` bytes in one request, then computes."""
    return traces.Profile('t', (traces.Step(0.0, ((0, size),)),),
                          tail_cpu=cpu, image_bytes=image)


def cfg(**kw):
    base = dict(hosts=1, vms_per_host=1, profile=one_read(4 * MB),
                link_bps=RATE, latency=0.01, cluster_bytes=65536, cores=4)
    base.update(kw)
    return model.Config(**base)


class TestPS(unittest.TestCase):
    def test_two_jobs_share_then_one_runs_alone(self):
        env = simpy.Environment()
        link = ps_mod.PS(env, 1.0)
        done = {}

        def job(name, work):
            yield link.serve(work)
            done[name] = env.now
        env.process(job('a', 1.0))
        env.process(job('b', 2.0))
        env.run()
        # Both at 1/2 until a has 1 (t=2), then b alone: 1 more second.
        self.assertAlmostEqual(done['a'], 2.0)
        self.assertAlmostEqual(done['b'], 3.0)
        self.assertAlmostEqual(link.total, 3.0)

    def test_cap_and_background(self):
        env = simpy.Environment()
        cpu = ps_mod.PS(env, 2.0, per_unit_cap=1.0, background=2.0)
        ev = cpu.serve(3.0)
        env.run()
        # 2 cores over 1 job + 2 background threads: 2/3 core each.
        self.assertTrue(ev.processed)
        self.assertAlmostEqual(env.now, 4.5)
        env2 = simpy.Environment()
        alone = ps_mod.PS(env2, 2.0, per_unit_cap=1.0)
        alone.serve(3.0)
        env2.run()
        self.assertAlmostEqual(env2.now, 3.0)   # one core at most

    def test_bad_capacity(self):
        self.assertRaises(ValueError, ps_mod.PS, simpy.Environment(), 0)


class TestExactCases(unittest.TestCase):
    def test_one_host_one_vm(self):
        # time = latency + working set / rate (+ the boot's CPU)
        r = model.simulate(cfg(profile=one_read(4 * MB, cpu=2.0)))
        ws = 4 * MB // 65536 * 65536 + 65536   # 4 MB rounded up to clusters
        self.assertAlmostEqual(r.predicted_seconds,
                               0.01 + ws * OVH / 1e6 + 2.0, places=6)
        self.assertAlmostEqual(r.origin_egress_bytes, ws * OVH)

    def test_serial_requests_pay_latency_each(self):
        prof = traces.synthetic('s', 1048576, 0.0, 64 * MB, request=131072)
        r = model.simulate(cfg(profile=prof))
        self.assertAlmostEqual(r.predicted_seconds,
                               8 * 0.01 + 1048576 * OVH / 1e6, places=6)

    def test_vms_of_a_host_share_the_fetch(self):
        r1 = model.simulate(cfg())
        r4 = model.simulate(cfg(vms_per_host=4))
        self.assertAlmostEqual(r4.origin_egress_bytes, r1.origin_egress_bytes)
        self.assertAlmostEqual(r4.predicted_seconds, r1.predicted_seconds)

    def test_two_hosts_in_a_chain(self):
        # fanout 1: host1 reads from host0, which reads from the origin;
        # host0's parent copy-on-read completes, then sends to host1.
        r = model.simulate(cfg(hosts=2, fanout=1))
        ws = 4 * MB // 65536 * 65536 + 65536
        one = 0.01 + ws * OVH / 1e6
        self.assertEqual(r.depth, 2)
        self.assertAlmostEqual(r.boot_seconds[0], one, places=6)
        self.assertAlmostEqual(r.predicted_seconds, 2 * one, places=6)
        self.assertAlmostEqual(r.origin_egress_bytes, ws * OVH)
        self.assertAlmostEqual(r.host_ingress_bytes[1], ws * OVH)

    def test_origin_egress_is_fanout_working_sets(self):
        r = model.simulate(cfg(hosts=40, fanout=3))
        ws = (4 * MB // 65536 + 1) * 65536
        self.assertAlmostEqual(r.origin_egress_bytes, 3 * ws * OVH)
        self.assertEqual(r.depth, 4)   # 3 + 9 + 27 >= 40

    def test_full_copy(self):
        # Every host downloads the image through the origin's one link.
        r = model.simulate(cfg(hosts=3, alternative='full_copy',
                               image_bytes=10 * MB,
                               profile=one_read(4 * MB, cpu=1.0)))
        self.assertAlmostEqual(r.predicted_seconds,
                               0.01 + 3 * 10 * MB * OVH / 1e6 + 1.0, places=6)
        self.assertAlmostEqual(r.origin_egress_bytes, 30 * MB * OVH)

    def test_shared_store_no_host_cache(self):
        r = model.simulate(cfg(hosts=2, vms_per_host=2,
                               alternative='shared'))
        self.assertAlmostEqual(r.origin_egress_bytes, 4 * 4 * MB * OVH)
        self.assertAlmostEqual(r.predicted_seconds,
                               0.01 + 16 * MB * OVH / 1e6, places=6)

    def test_virtman_waits_for_attach_per_level(self):
        r = model.simulate(cfg(hosts=3, alternative='virtman',
                               attach_seconds=5.0))
        ws = (4 * MB // 65536 + 1) * 65536
        data = ws * OVH / 1e6
        # Binary tree: host0 and host1 attach at 5 s and share the
        # origin's link; host2 (depth 2) attaches at 10 s, waits for
        # host0's copy, then reads it.
        self.assertEqual(r.depth, 2)
        self.assertAlmostEqual(r.boot_seconds[0], 5.01 + 2 * data, places=6)
        self.assertAlmostEqual(r.predicted_seconds, 5.02 + 3 * data,
                               places=6)

    def test_parent_failure_mid_storm(self):
        # Chain origin <- host0 <- host1 <- host2; host1 dies at 1 s.
        prof = traces.synthetic('s', 4 * MB, 0.0, 64 * MB)
        base = cfg(hosts=3, fanout=1, profile=prof)
        ok = model.simulate(base)
        base_fail = cfg(hosts=3, fanout=1, profile=prof, fail_host=1,
                        fail_at=1.0, failover_delay=0.5)
        r = model.simulate(base_fail)
        # host2 still boots (from host0, its grandparent), later; the
        # dead host's VM is not counted.
        self.assertEqual(len(r.boot_seconds), 2)
        self.assertGreater(r.predicted_seconds, 0.5)
        self.assertLess(ok.origin_egress_bytes, 4.5 * MB * OVH)
        self.assertAlmostEqual(r.origin_egress_bytes, ok.origin_egress_bytes)

    def test_shared_cpu_contention(self):
        # 4 VMs of 1 CPU-s on 2 shared cores: 2 s, the reads being free.
        prof = traces.Profile('c', (), tail_cpu=1.0, image_bytes=MB)
        r = model.simulate(cfg(hosts=4, profile=prof, shared_cpu=True,
                               cores=2))
        self.assertAlmostEqual(r.predicted_seconds, 2.0)

    def test_aggregation_close_to_exact(self):
        prof = traces.load('demo')
        kw = dict(hosts=20, vms_per_host=4, profile=prof, link_bps=1e9,
                  fanout=3, cores=4)
        exact = model.simulate(model.Config(exact=True, **kw))
        agg = model.simulate(model.Config(exact=False, **kw))
        self.assertLess(abs(agg.predicted_seconds / exact.predicted_seconds
                            - 1), 0.05)
        self.assertAlmostEqual(agg.origin_egress_bytes,
                               exact.origin_egress_bytes)

    def test_bad_config(self):
        for kw in ({'alternative': 'nfs'}, {'hosts': 0}, {'fanout': 0},
                   {'link_bps': 0}, {'fail_host': 5, 'fail_at': 1}):
            self.assertRaises(ValueError, model.simulate, cfg(**kw))


class TestTraces(unittest.TestCase):
    def test_batches_and_cpu_gaps(self):
        rows = [['R', 0.5, 0.5, 0, 4096],
                # issued before the first completed: same batch
                ['R', 1.0, 1.2, 65536, 4096],
                ['R', 1.1, 1.3, 131072, 4096],
                ['W', 1.4, 1.4, 0, 4096],
                ['R', 2.0, 2.1, 0, 8192]]
        p = traces.from_requests('x', rows, boot_cpu=3.0, image_bytes=MB)
        self.assertEqual([s.cpu for s in p.steps], [0.5, 0.5, 0.7])
        self.assertEqual([len(s.reads) for s in p.steps], [1, 2, 1])
        self.assertAlmostEqual(p.tail_cpu, 0.9)
        self.assertAlmostEqual(p.cpu_seconds, 2.6)
        self.assertEqual(p.working_set(65536), 3 * 65536)

    def test_merge(self):
        p = traces.synthetic('s', 1048576, 0.0, MB)
        self.assertEqual(len(p.merged(0.05).steps), 1)
        self.assertEqual(p.merged(0.05).read_bytes, p.read_bytes)

    def test_load_file_and_reject_unknown_format(self):
        demo = traces.load('demo')
        self.assertGreater(demo.read_bytes, 0)
        self.assertGreater(demo.cpu_seconds, 0)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'bad.json.gz')
            with gzip.open(path, 'wt') as f:
                json.dump({'format': 99}, f)
            self.assertRaises(ValueError, traces.load, path)


class TestCalibration(unittest.TestCase):
    """The stored testbed storms, replayed: the issue's 15 % bound."""

    def test_measured_storms_within_15_percent(self):
        from simulation import bench
        rows = bench.calibration(traces.load('demo'))
        self.assertGreaterEqual(len(rows), 3)
        for r in rows:
            for what in ('seconds', 'origin_bytes'):
                err = (r['predicted_' + what] / r['measured_' + what]) - 1
                self.assertLess(abs(err), 0.15, '%d hosts, %s: %+.1f%%' % (
                    r['hosts'], what, 100 * err))
