"""What a storm looks like: the inputs of the tuning profile.

Process counts are *processes* in the whole deployment (all hosts), since
what breaks (MariaDB's connections, RabbitMQ's connections, the conductor
queue) is shared by all of them. ``[conductor] workers`` and
``[scheduler] workers`` are set to these counts, which is right when one
host runs them (the one-machine OpenStack, devstack); with several
controller hosts, divide by the number of hosts.
"""

import dataclasses

from fastboot_nova.tuning import exception

BACKENDS = ('threading', 'eventlet')


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The storm to tune for. Validated on creation."""

    #: Servers booted at once (one request or batches sent together).
    servers: int
    #: nova-compute services (hosts) the servers land on.
    computes: int
    #: nova-conductor processes, nova-scheduler processes, nova-api
    #: processes (uwsgi/gunicorn workers) in the deployment.
    conductors: int = 2
    schedulers: int = 2
    api_workers: int = 2
    #: cinder-api and placement API processes.
    cinder_api_workers: int = 2
    placement_workers: int = 2
    #: MariaDB's max_connections, when it is fixed (a shared DB server);
    #: None lets the profile size it.
    db_max_connections: int | None = None
    #: DB connections of everything else on that MariaDB (Keystone,
    #: Glance, monitoring, an admin shell).
    db_other_connections: int = 50
    #: Nova's concurrency mode; 34.0 runs its services threaded.
    concurrency_backend: str = 'threading'
    #: Flavor of the storm's servers, for the quotas.
    flavor_vcpus: int = 1
    flavor_ram_mb: int = 512
    #: Size of a volume per server when booting the stock way
    #: (source_type=snapshot), for Cinder's quotas.
    volume_gb: int = 1

    def __post_init__(self):
        for name in ('servers', 'computes', 'conductors', 'schedulers',
                     'api_workers', 'cinder_api_workers',
                     'placement_workers', 'flavor_vcpus', 'flavor_ram_mb',
                     'volume_gb'):
            _require_int(name, getattr(self, name), 1)
        _require_int('db_other_connections', self.db_other_connections, 0)
        if self.db_max_connections is not None:
            _require_int('db_max_connections', self.db_max_connections, 1)
        if self.concurrency_backend not in BACKENDS:
            raise exception.ImpossibleInput(
                constraint='concurrency_backend in %s' % (BACKENDS,),
                reason='got %r' % (self.concurrency_backend,))

    @property
    def threaded(self):
        return self.concurrency_backend == 'threading'


def _require_int(name, value, minimum):
    # bool is an int subclass; True servers is a bug, not one server.
    if isinstance(value, bool) or not isinstance(value, int):
        raise exception.ImpossibleInput(
            constraint='%s is an integer' % name,
            reason='got %r' % (value,))
    if value < minimum:
        raise exception.ImpossibleInput(
            constraint='%s >= %d' % (name, minimum),
            reason='got %d' % value)
