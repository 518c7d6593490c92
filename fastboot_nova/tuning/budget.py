"""Shared quantities: builds in flight, threads, and connection budgets.

Several services' settings derive from the same few figures (how many
builds run at once, how many threads a conductor needs, how many DB
connections every process may open together). They are computed once here
so nova.conf, cinder.conf, my.cnf and rabbitmq.conf agree.
"""

import dataclasses
import math

from fastboot_nova.tuning import assumptions as a
from fastboot_nova.tuning import exception

#: DB engines (connection pools) of a nova-api, nova-conductor or
#: nova-scheduler process: the API database, cell0 and cell1, each with
#: its own pool sized by [api_database] / [database].
NOVA_ENGINES = 3
#: cinder-scheduler and cinder-volume, one process each.
CINDER_SERVICES = 2


def builds_per_compute(inputs):
    """max_concurrent_builds: a compute's share, within [10, BUILDS_CAP]."""
    share = math.ceil(inputs.servers / inputs.computes)
    return max(10, min(share, a.BUILDS_CAP))


def builds_in_flight(inputs):
    """Builds running at once in the whole cloud: min(N, H x B)."""
    return min(inputs.servers,
               inputs.computes * builds_per_compute(inputs))


def conductor_threads(inputs):
    """RPC executor threads per conductor process.

    Every running build has at most one conductor call in flight, so the
    conductors see up to min(N, H x B) calls at once, spread over C
    processes; never below oslo.messaging's 64, never above the cap of
    the concurrency backend.
    """
    wanted = math.ceil(builds_in_flight(inputs) / inputs.conductors)
    return max(64, min(wanted, a.THREAD_CAP[inputs.concurrency_backend]))


def attachments_in_flight(inputs):
    """Cinder attachment calls at once: one per running build."""
    return builds_in_flight(inputs)


@dataclasses.dataclass(frozen=True)
class DbBudget:
    """MariaDB connections: every process's pools, summed."""

    nova_engines: int
    cinder_engines: int
    placement_engines: int
    per_engine: int
    pool_size: int
    overflow: int
    other: int
    needed: int
    max_connections: int

    @property
    def engines(self):
        return self.nova_engines + self.cinder_engines + \
            self.placement_engines

    def describe(self):
        return ('%d engines (nova %d, cinder %d, placement %d) x %d '
                '(pool %d + overflow %d) + %d other = %d'
                % (self.engines, self.nova_engines, self.cinder_engines,
                   self.placement_engines, self.per_engine, self.pool_size,
                   self.overflow, self.other, self.needed))


def db_budget(inputs):
    """Size every pool so the sum fits MariaDB's max_connections.

    Without a fixed max_connections each engine gets pool 10 + overflow 20
    and max_connections is the sum. With one (``db_max_connections``),
    the per-engine budget shrinks to fit, down to oslo.db's default pool
    of 5; below that the storm cannot be served and this raises.
    """
    nova = NOVA_ENGINES * (inputs.api_workers + inputs.conductors +
                           inputs.schedulers)
    cinder = inputs.cinder_api_workers + CINDER_SERVICES
    placement = inputs.placement_workers
    engines = nova + cinder + placement
    per_engine = a.POOL_SIZE + a.POOL_OVERFLOW
    limit = inputs.db_max_connections
    if limit is not None:
        per_engine = min(per_engine,
                         (limit - inputs.db_other_connections) // engines)
        if per_engine < a.MIN_ENGINE_CONNECTIONS:
            need = engines * a.MIN_ENGINE_CONNECTIONS + \
                inputs.db_other_connections
            raise exception.ImpossibleInput(
                constraint='db_max_connections >= engines x %d + other '
                           'connections' % a.MIN_ENGINE_CONNECTIONS,
                reason='%d DB engines (nova 3 x %d processes, cinder %d, '
                       'placement %d) x %d + %d other = %d connections '
                       'needed, --db-max-connections allows %d'
                       % (engines, nova // NOVA_ENGINES, cinder, placement,
                          a.MIN_ENGINE_CONNECTIONS,
                          inputs.db_other_connections, need, limit))
    pool = min(a.POOL_SIZE, per_engine)
    needed = engines * per_engine + inputs.db_other_connections
    return DbBudget(
        nova_engines=nova, cinder_engines=cinder,
        placement_engines=placement, per_engine=per_engine,
        pool_size=pool, overflow=per_engine - pool,
        other=inputs.db_other_connections, needed=needed,
        max_connections=limit if limit is not None else needed)


def pool_timeout(threads, per_engine):
    """Seconds a thread may wait for a pooled connection.

    ``threads`` threads share ``per_engine`` connections, each held about
    DB_HOLD_SECONDS: the last waits ceil(threads / per_engine) holds;
    twice that, never below SQLAlchemy's 30 s.
    """
    rounds = math.ceil(threads / per_engine)
    return max(30, math.ceil(2 * rounds * a.DB_HOLD_SECONDS))
