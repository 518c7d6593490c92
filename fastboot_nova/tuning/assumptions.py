"""The costs the formulas assume, in one place.

The tuning profile turns a storm (N servers on H computes) into queue
lengths, and queue lengths into timeouts and pool sizes. For that it needs
how long one unit of work holds a worker. These are *assumptions* for a
loaded small control plane (2 cores shared by every service), chosen on
the pessimistic side; where a figure was measured, the comment says where.
The storm benchmark (``tox -e bench-storm``) is the place that measures
them; change them here, and the formulas and their printed reasons follow.
"""

#: Conductor RPC calls one build makes while it runs on its compute
#: (instance.save, BDM and migration-context updates, service reports):
#: about 10-12 in a boot with a fake guest; 12 is the upper end.
CALLS_PER_BUILD = 12

#: Seconds one conductor RPC call holds a conductor worker under a storm
#: (a DB round trip or two on a CPU-starved host; ~2 ms unloaded, FACTS.md).
CALL_SECONDS = 0.1

#: Seconds the scheduler spends per server of one multi-create request.
#: Measured in-process: 200 servers in one request took ~250 s (FACTS.md),
#: dominated by one placement call per consumer per claim.
SCHEDULE_SECONDS = 1.25

#: Seconds one Cinder attachment update (initialize_connection of the
#: shared origin plus its DB writes) holds cinder-volume under load.
ATTACH_SECONDS = 0.1

#: Seconds Cinder needs per volume created from a snapshot when a storm
#: creates them one after another (the stock boot-from-volume way; an RBD
#: clone is ~0.2 s alone, the DB and the API add the rest under load).
VOLUME_CREATE_SECONDS = 1.0

#: Seconds one DB transaction holds a pooled connection under a storm.
DB_HOLD_SECONDS = 0.5

#: Per-engine connections kept open (max_pool_size) and the burst on top
#: (max_overflow) when the MariaDB budget allows: 10 + 20 = 30. More per
#: process does not run more queries on a 2-core MariaDB; it only moves the
#: queue from the pool (bounded by pool_timeout) into MariaDB threads.
POOL_SIZE = 10
POOL_OVERFLOW = 20

#: The smallest per-engine connection budget the profile accepts: oslo.db's
#: own default max_pool_size. Below it every transaction waits on the pool.
MIN_ENGINE_CONNECTIONS = 5

#: Cap on one process's RPC executor threads. Native threads cost a stack
#: and GIL turns each; beyond the cap the work waits in RabbitMQ, which
#: rpc_response_timeout covers. Green threads are cheap: a higher cap.
THREAD_CAP = {'threading': 256, 'eventlet': 1024}

#: Concurrent builds per compute never above this: beyond it a compute's
#: own CPU, not its build queue, is what limits a storm.
BUILDS_CAP = 50

#: Client and server heartbeat timeout. A GIL-busy process on a saturated
#: host can miss 60 s (the default) of heartbeats during a storm; RabbitMQ
#: then closes its connection and every call in flight on it times out.
HEARTBEAT_SECONDS = 120

#: MariaDB's table_open_cache default; open_files_limit is derived from it.
TABLE_OPEN_CACHE = 2000
