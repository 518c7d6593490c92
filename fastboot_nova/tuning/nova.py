"""nova.conf: the settings of nova-api, -conductor, -scheduler, -compute.

Each setting names the roles that read it, so a compute-only file
(``nova-cpu``) gets only its part. Formulas use N servers, H computes,
C conductors, S schedulers, W API workers, B = max_concurrent_builds.
"""

import math

from fastboot_nova.tuning import assumptions as a
from fastboot_nova.tuning import budget
from fastboot_nova.tuning import setting as s

DEFAULT = 'DEFAULT'
RABBIT = 'oslo_messaging_rabbit'
COMPUTE = frozenset(('compute',))
CONDUCTOR = frozenset(('conductor',))
SCHEDULER = frozenset(('scheduler',))


def _nova(section, name, value, compare, default, reason, formula,
          roles=s.ALL_ROLES, unlimited=None):
    return s.Setting('nova', section, name, value, compare, default, reason,
                     formula, frozenset(roles), unlimited)


def rpc_response_timeout(inputs):
    """Seconds: the conductor queue a build's call may wait behind."""
    queue = budget.builds_in_flight(inputs)
    return max(60, math.ceil(2 * queue * a.CALL_SECONDS /
                             inputs.conductors))


def service_down_time(rpc_timeout, report_interval=10):
    return rpc_timeout + 2 * report_interval


def settings(inputs, db):
    """All nova.conf settings for ``inputs`` and the DB budget ``db``."""
    return (_compute(inputs) + _rpc(inputs) + _scheduling(inputs) +
            _database(inputs, db) + _quotas(inputs))


def _compute(inputs):
    builds = budget.builds_per_compute(inputs)
    out = [
        _nova(DEFAULT, 'max_concurrent_builds', builds, s.AT_LEAST, 10,
              'each compute builds its share of the storm at once',
              'max(10, min(ceil(N / H), %d))' % a.BUILDS_CAP, COMPUTE),
        _nova(DEFAULT, 'block_device_allocate_retries',
              max(60, math.ceil(inputs.servers * a.VOLUME_CREATE_SECONDS /
                                3)),
              s.AT_LEAST, 60,
              'a stock boot waits for its volume while Cinder creates N of '
              'them one after another',
              'max(60, ceil(N x %.1f s / interval 3 s))'
              % a.VOLUME_CREATE_SECONDS, COMPUTE),
        _nova(DEFAULT, 'block_device_allocate_retries_interval', 3,
              s.AT_LEAST, 3,
              'the retries above assume a 3 s interval (Nova default)',
              '3', COMPUTE),
    ]
    if inputs.threaded:
        out += [
            _nova(DEFAULT, 'max_concurrent_snapshots', builds, s.AT_LEAST,
                  5, 'threaded Nova runs builds and snapshots in one pool '
                  'sized max(builds, snapshots) and warns if they differ',
                  'max_concurrent_builds', COMPUTE),
            _nova(DEFAULT, 'default_thread_pool_size', builds + 10,
                  s.AT_LEAST, 10,
                  "every build allocates its network in nova's default "
                  'thread pool; 10 threads would serialise the storm',
                  'max_concurrent_builds + 10', COMPUTE),
        ]
    return out


def _rpc(inputs):
    threads = budget.conductor_threads(inputs)
    builds = budget.builds_per_compute(inputs)
    timeout = rpc_response_timeout(inputs)
    down = service_down_time(timeout)
    cap = a.THREAD_CAP[inputs.concurrency_backend]
    out = [
        _nova(DEFAULT, 'executor_thread_pool_size', threads, s.AT_LEAST, 64,
              'one RPC worker per build call in flight; more waits in '
              'RabbitMQ under rpc_response_timeout',
              'max(64, min(ceil(min(N, H x B) / C), %d))' % cap,
              CONDUCTOR | SCHEDULER),
        _nova(RABBIT, 'rpc_conn_pool_size', threads, s.AT_LEAST, 30,
              'every RPC worker may send a call or reply at once; a '
              'thread finding the pool empty blocks',
              'executor_thread_pool_size', s.CONTROL_ROLES),
        _nova(RABBIT, 'rpc_conn_pool_size', max(30, builds + 10),
              s.AT_LEAST, 30,
              'each running build calls the conductor, plus periodic '
              'tasks and replies', 'max(30, B + 10)', COMPUTE),
        _nova(DEFAULT, 'rpc_response_timeout', timeout, s.AT_LEAST, 60,
              'a call may queue behind every build in flight at the '
              'conductors',
              'max(60, ceil(2 x min(N, H x B) x %.2f s / C))'
              % a.CALL_SECONDS),
        _nova(DEFAULT, 'long_rpc_timeout',
              max(1800, math.ceil(2 * inputs.servers * a.SCHEDULE_SECONDS)),
              s.AT_LEAST, 1800,
              'select_destinations for one request of N servers scales '
              'with N', 'max(1800, ceil(2 x N x %.2f s))'
              % a.SCHEDULE_SECONDS),
        _nova(DEFAULT, 'report_interval', 10, s.AT_MOST, 10,
              'service_down_time below assumes reports every 10 s',
              '10 (Nova default)'),
        _nova(DEFAULT, 'service_down_time', down, s.AT_LEAST, 60,
              "a compute's state report is a conductor call that may "
              'queue for rpc_response_timeout; it must not be declared '
              'down meanwhile (dead hosts are noticed this much later)',
              'rpc_response_timeout + 2 x report_interval'),
        _nova(RABBIT, 'heartbeat_timeout_threshold', a.HEARTBEAT_SECONDS,
              s.AT_LEAST, 60,
              'a CPU-starved process can miss 60 s of heartbeats in a '
              'storm; RabbitMQ then drops its connection and the calls '
              'on it', '%d' % a.HEARTBEAT_SECONDS),
        _nova(RABBIT, 'heartbeat_rate', 3, s.AT_LEAST, 3,
              'checks the heartbeat 3 times per threshold, so one late '
              'check is not a dead connection', '3 (oslo.messaging '
              'default)'),
    ]
    if inputs.threaded:
        out.append(_nova(
            DEFAULT, 'cell_worker_thread_pool_size', 2 * threads,
            s.AT_LEAST, 5,
            'every RPC worker may scatter-gather over cell0 and cell1 at '
            'once; a task that cannot start in time reads as a cell that '
            'did not respond', '2 cells x executor_thread_pool_size',
            s.CONTROL_ROLES))
    return out


def _scheduling(inputs):
    return [
        _nova('conductor', 'workers', inputs.conductors, s.AT_MOST, None,
              'the DB and RabbitMQ budgets count C conductor processes',
              'C', CONDUCTOR),
        _nova('scheduler', 'workers', inputs.schedulers, s.AT_MOST, None,
              'the DB and RabbitMQ budgets count S scheduler processes',
              'S', SCHEDULER),
        _nova('scheduler', 'max_attempts',
              max(3, min(inputs.computes, 5)), s.AT_LEAST, 3,
              'a build that fails on one host retries on others; more '
              'attempts than hosts cannot help', 'clamp(H, 3, 5)',
              s.CONTROL_ROLES),
        _nova('scheduler', 'max_placement_results',
              max(1000, inputs.computes), s.AT_LEAST, 1000,
              'placement must return every compute as a candidate',
              'max(1000, H)', SCHEDULER),
    ]


def _database(inputs, db):
    threads = budget.conductor_threads(inputs)
    timeout = budget.pool_timeout(threads, db.per_engine)
    out = []
    for section in ('database', 'api_database'):
        out += [
            _nova(section, 'max_pool_size', db.pool_size, s.AT_MOST, 5,
                  'pool + overflow of every engine of every process is '
                  "MariaDB's max_connections budget", db.describe(),
                  s.CONTROL_ROLES),
            _nova(section, 'max_overflow', db.overflow, s.AT_MOST, 50,
                  'the default 50 lets each engine open 55 connections: '
                  "three processes exhaust MariaDB's default 151",
                  'per-engine budget %d - max_pool_size %d'
                  % (db.per_engine, db.pool_size), s.CONTROL_ROLES),
            _nova(section, 'pool_timeout', timeout, s.AT_LEAST, 30,
                  'RPC workers queue for a pooled connection, about one '
                  'transaction each', 'max(30, ceil(2 x ceil(threads %d / '
                  '%d) x %.1f s))' % (threads, db.per_engine,
                                      a.DB_HOLD_SECONDS),
                  s.CONTROL_ROLES),
        ]
    return out


def _quotas(inputs):
    n = inputs.servers
    return [
        _nova('quota', 'instances', n, s.AT_LEAST, 10,
              "the storm's N servers fit one project's default quota "
              '(a quota set by the API overrides this)', 'N',
              frozenset(('api',)), unlimited=-1),
        _nova('quota', 'cores', n * inputs.flavor_vcpus, s.AT_LEAST, 20,
              'N servers of the flavor fit the default cores quota',
              'N x flavor vCPUs', frozenset(('api',)), unlimited=-1),
        _nova('quota', 'ram', n * inputs.flavor_ram_mb, s.AT_LEAST, 51200,
              'N servers of the flavor fit the default RAM quota (MiB)',
              'N x flavor RAM', frozenset(('api',)), unlimited=-1),
    ]
