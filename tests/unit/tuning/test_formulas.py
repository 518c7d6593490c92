"""The formulas, against values computed by hand (see each case's notes).

Expectations are literals worked out on paper from the formulas in the
module docstrings and the figures in tuning/assumptions.py; none is
computed by the code under test.
"""

from oslotest import base

from fastboot_nova import tuning
from fastboot_nova.tuning import exception


def _values(profile, kind):
    return {(s.section, s.name): s.value for s in profile.for_kind(kind)}


# N=1000 H=4, defaults C=S=W=2: B = max(10, min(ceil(1000/4)=250, 50))
# = 50; in flight min(1000, 4x50) = 200; conductor threads max(64,
# min(ceil(200/2)=100, 256)) = 100; rpc timeout max(60, ceil(2x200x0.1/2)
# = 20) = 60; long max(1800, ceil(2x1000x1.25) = 2500) = 2500; DB engines
# 3x(2+2+2) + (2+2) + 2 = 24, x30 + 50 = 770.
BIG = dict(servers=1000, computes=4)
BIG_NOVA = {
    ('DEFAULT', 'max_concurrent_builds'): 50,
    ('DEFAULT', 'max_concurrent_snapshots'): 50,
    ('DEFAULT', 'default_thread_pool_size'): 60,
    ('DEFAULT', 'block_device_allocate_retries'): 334,
    ('DEFAULT', 'block_device_allocate_retries_interval'): 3,
    ('DEFAULT', 'executor_thread_pool_size'): 100,
    ('oslo_messaging_rabbit', 'rpc_conn_pool_size'): 100,
    ('DEFAULT', 'rpc_response_timeout'): 60,
    ('DEFAULT', 'long_rpc_timeout'): 2500,
    ('DEFAULT', 'report_interval'): 10,
    ('DEFAULT', 'service_down_time'): 80,
    ('oslo_messaging_rabbit', 'heartbeat_timeout_threshold'): 120,
    ('oslo_messaging_rabbit', 'heartbeat_rate'): 3,
    ('DEFAULT', 'cell_worker_thread_pool_size'): 200,
    ('conductor', 'workers'): 2,
    ('scheduler', 'workers'): 2,
    ('scheduler', 'max_attempts'): 4,
    ('scheduler', 'max_placement_results'): 1000,
    ('database', 'max_pool_size'): 10,
    ('database', 'max_overflow'): 20,
    ('database', 'pool_timeout'): 30,
    ('api_database', 'max_pool_size'): 10,
    ('api_database', 'max_overflow'): 20,
    ('api_database', 'pool_timeout'): 30,
    ('quota', 'instances'): 1000,
    ('quota', 'cores'): 1000,
    ('quota', 'ram'): 512000,
}


class TestBigStorm(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.profile = tuning.generate(tuning.Inputs(**BIG))

    def test_nova(self):
        self.assertEqual(BIG_NOVA, _values(self.profile, 'nova'))

    def test_compute_file_gets_compute_values(self):
        # The compute's own pool is max(30, B + 10) = 60, not the
        # conductor's 100; no DB, quota or worker settings.
        values = _values(self.profile, 'nova-cpu')
        self.assertEqual(60, values[('oslo_messaging_rabbit',
                                     'rpc_conn_pool_size')])
        self.assertEqual(50, values[('DEFAULT', 'max_concurrent_builds')])
        self.assertNotIn(('database', 'max_pool_size'), values)
        self.assertNotIn(('quota', 'instances'), values)
        self.assertNotIn(('conductor', 'workers'), values)

    def test_cinder(self):
        # attachments in flight 200: executor max(64, 200) = 200; rpc
        # max(60, ceil(2 x 200 x 0.1) = 40) = 60; down 60 + 20.
        self.assertEqual({
            ('DEFAULT', 'rpc_response_timeout'): 60,
            ('DEFAULT', 'executor_thread_pool_size'): 200,
            ('oslo_messaging_rabbit', 'rpc_conn_pool_size'): 200,
            ('oslo_messaging_rabbit', 'heartbeat_timeout_threshold'): 120,
            ('DEFAULT', 'service_down_time'): 80,
            ('DEFAULT', 'osapi_volume_workers'): 2,
            ('database', 'max_pool_size'): 10,
            ('database', 'max_overflow'): 20,
            # ceil(200 / 30) = 7 rounds: 2 x 7 x 0.5 = 7 -> 30
            ('database', 'pool_timeout'): 30,
            ('DEFAULT', 'quota_volumes'): 1000,
            ('DEFAULT', 'quota_gigabytes'): 1000,
        }, _values(self.profile, 'cinder'))

    def test_servers(self):
        self.assertEqual({('placement_database', 'max_pool_size'): 10,
                          ('placement_database', 'max_overflow'): 20,
                          ('placement_database', 'pool_timeout'): 30},
                         _values(self.profile, 'placement'))
        # 10 + 770 + 2 x 2000
        self.assertEqual({('mysqld', 'max_connections'): 770,
                          ('mysqld', 'open_files_limit'): 4780,
                          ('mysqld', 'max_connect_errors'): 10000},
                         _values(self.profile, 'mariadb'))
        self.assertEqual({(None, 'heartbeat'): 120},
                         _values(self.profile, 'rabbitmq'))
        # AMQP: 6 x (100+2) + 4 x (60+2) + 4 x (200+2) = 1668 < 65536
        self.assertEqual({(None, 'rabbitmq-server LimitNOFILE'): 65536,
                          (None, 'mariadb LimitNOFILE'): 4780},
                         _values(self.profile, 'system'))
        self.assertIn(('AMQP connections (upper bound)', 1668),
                      self.profile.figures)

    def test_every_setting_explains_itself(self):
        for s in self.profile.settings:
            self.assertTrue(s.reason.strip(), s)
            self.assertTrue(s.formula.strip(), s)
            self.assertNotIn('\n', s.reason)


# Table: (inputs, {(kind, section, name): value}) worked out by hand.
CASES = [
    # One server on one compute: everything at its floor. B = max(10,
    # min(1, 50)) = 10; retries max(60, ceil(1/3)) = 60; attempts
    # clamp(1, 3, 5) = 3; default pool 10 + 10.
    (dict(servers=1, computes=1), {
        ('nova', 'DEFAULT', 'max_concurrent_builds'): 10,
        ('nova', 'DEFAULT', 'default_thread_pool_size'): 20,
        ('nova', 'DEFAULT', 'block_device_allocate_retries'): 60,
        ('nova', 'DEFAULT', 'executor_thread_pool_size'): 64,
        ('nova', 'DEFAULT', 'rpc_response_timeout'): 60,
        ('nova', 'DEFAULT', 'long_rpc_timeout'): 1800,
        ('nova', 'scheduler', 'max_attempts'): 3,
        ('nova', 'quota', 'instances'): 1,
        ('nova', 'quota', 'ram'): 512,
        ('nova-cpu', 'oslo_messaging_rabbit', 'rpc_conn_pool_size'): 30,
        ('cinder', 'DEFAULT', 'executor_thread_pool_size'): 64,
    }),
    # 10000 on 100 computes, C=2: B = 50, in flight min(10000, 5000) =
    # 5000; threads min(2500, 256) = 256; rpc ceil(2 x 5000 x 0.1 / 2) =
    # 500; down 520; long 2 x 10000 x 1.25 = 25000; cells 2 x 256; cinder
    # rpc 2 x 5000 x 0.1 = 1000, executor min(5000, 1024); pool_timeout
    # ceil(256/30) = 9 -> 9 -> 30; attempts clamp(100) = 5.
    (dict(servers=10000, computes=100), {
        ('nova', 'DEFAULT', 'executor_thread_pool_size'): 256,
        ('nova', 'DEFAULT', 'rpc_response_timeout'): 500,
        ('nova', 'DEFAULT', 'service_down_time'): 520,
        ('nova', 'DEFAULT', 'long_rpc_timeout'): 25000,
        ('nova', 'DEFAULT', 'cell_worker_thread_pool_size'): 512,
        ('nova', 'database', 'pool_timeout'): 30,
        ('nova', 'scheduler', 'max_attempts'): 5,
        ('nova', 'DEFAULT', 'block_device_allocate_retries'): 3334,
        ('cinder', 'DEFAULT', 'rpc_response_timeout'): 1000,
        ('cinder', 'DEFAULT', 'executor_thread_pool_size'): 1024,
        ('cinder', 'DEFAULT', 'service_down_time'): 1020,
    }),
    # Same storm on eventlet: green threads capped at 1024, pool_timeout
    # ceil(1024 / 30) = 35 rounds x 2 x 0.5 s = 35.
    (dict(servers=10000, computes=100, concurrency_backend='eventlet'), {
        ('nova', 'DEFAULT', 'executor_thread_pool_size'): 1024,
        ('nova', 'database', 'pool_timeout'): 35,
        ('nova', 'api_database', 'pool_timeout'): 35,
    }),
    # 2000 placement candidates: max(1000, 2000).
    (dict(servers=2000, computes=2000), {
        ('nova', 'scheduler', 'max_placement_results'): 2000,
        ('nova', 'DEFAULT', 'max_concurrent_builds'): 10,
    }),
    # A fixed max_connections 500: room 450 // 24 engines = 18 per
    # engine, pool 10 + overflow 8; MariaDB keeps 500.
    (dict(servers=100, computes=2, db_max_connections=500), {
        ('nova', 'database', 'max_pool_size'): 10,
        ('nova', 'database', 'max_overflow'): 8,
        ('cinder', 'database', 'max_overflow'): 8,
        ('placement', 'placement_database', 'max_overflow'): 8,
        ('mariadb', 'mysqld', 'max_connections'): 500,
        ('mariadb', 'mysqld', 'open_files_limit'): 4510,
    }),
    # Tight: 170 = 24 x 5 + 50 exactly: pool 5, overflow 0.
    (dict(servers=100, computes=2, db_max_connections=170), {
        ('nova', 'database', 'max_pool_size'): 5,
        ('nova', 'database', 'max_overflow'): 0,
    }),
    # More processes: C=4 S=3 W=8 -> nova engines 3 x 15 = 45, + 4 + 2 =
    # 51 engines x 30 + 50 = 1580.
    (dict(servers=100, computes=2, conductors=4, schedulers=3,
          api_workers=8), {
        ('mariadb', 'mysqld', 'max_connections'): 1580,
        ('nova', 'conductor', 'workers'): 4,
        ('nova', 'scheduler', 'workers'): 3,
    }),
]


class TestTable(base.BaseTestCase):

    def test_cases(self):
        for args, expected in CASES:
            profile = tuning.generate(tuning.Inputs(**args))
            got = {}
            for kind, section, name in expected:
                values = _values(profile, kind)
                got[(kind, section, name)] = values.get((section, name))
            self.assertEqual(expected, got, args)

    def test_eventlet_leaves_out_thread_pools(self):
        profile = tuning.generate(tuning.Inputs(
            servers=100, computes=2, concurrency_backend='eventlet'))
        names = {s.name for s in profile.for_kind('nova')}
        self.assertNotIn('default_thread_pool_size', names)
        self.assertNotIn('cell_worker_thread_pool_size', names)
        self.assertNotIn('max_concurrent_snapshots', names)
        self.assertIn('eventlet', profile.notes[0])


class TestBadInput(base.BaseTestCase):

    def _fails(self, constraint, **kwargs):
        args = dict(servers=10, computes=2)
        args.update(kwargs)
        e = self.assertRaises(exception.ImpossibleInput,
                              lambda: tuning.generate(tuning.Inputs(**args)))
        self.assertIn(constraint, str(e))
        return str(e)

    def test_servers_below_one(self):
        self._fails('servers >= 1', servers=0)
        self._fails('servers >= 1', servers=-5)

    def test_computes_below_one(self):
        self._fails('computes >= 1', computes=0)

    def test_not_integers(self):
        self._fails('servers is an integer', servers=True)
        self._fails('computes is an integer', computes='4')
        self._fails('conductors is an integer', conductors=1.5)

    def test_other_counts(self):
        self._fails('conductors >= 1', conductors=0)
        self._fails('db_max_connections >= 1', db_max_connections=0)
        self._fails('db_other_connections >= 0', db_other_connections=-1)
        self._fails('concurrency_backend', concurrency_backend='asyncio')

    def test_db_max_connections_too_small(self):
        # 24 engines x 5 + 50 = 170 needed; 169 is one short.
        msg = self._fails('db_max_connections >= engines x 5',
                          db_max_connections=169)
        self.assertIn('170 connections needed', msg)
        self.assertIn('allows 169', msg)

    def test_other_connections_above_max(self):
        self._fails('db_max_connections', db_max_connections=40,
                    db_other_connections=50)
