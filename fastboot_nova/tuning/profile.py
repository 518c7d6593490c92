"""``generate``: inputs in, a :class:`~setting.Profile` out."""

from fastboot_nova.tuning import budget
from fastboot_nova.tuning import cinder
from fastboot_nova.tuning import mariadb
from fastboot_nova.tuning import nova
from fastboot_nova.tuning import placement
from fastboot_nova.tuning import rabbitmq
from fastboot_nova.tuning import setting

THREADING_NOTES = (
    'Nova runs threaded (34.0 default, [DEFAULT] concurrency_backend = '
    'auto/threading): executor_thread_pool_size is real threads (capped at '
    '256 per process), builds run in a pool of max(max_concurrent_builds, '
    'max_concurrent_snapshots) threads, network allocation in '
    'default_thread_pool_size, scatter-gather in '
    'cell_worker_thread_pool_size; DB pools are per process and shared by '
    'its threads, which queue for a connection up to pool_timeout.',
)
EVENTLET_NOTES = (
    'Nova runs on eventlet (deprecated): executor threads are green '
    '(cap 1024), default_green_pool_size (1000) replaces '
    'default_thread_pool_size, and cell_worker_thread_pool_size and '
    'max_concurrent_snapshots do not bound builds, so they are not set. '
    'A green thread that blocks without yielding holds its DB connection '
    'and starves heartbeats: the raised heartbeat and pool_timeout matter '
    'more.',
)
COMMON_NOTES = (
    'Cinder 29 runs on eventlet by default; its executor threads are '
    'green threads.',
    'Workers are processes in the whole deployment; with several '
    'controller hosts divide [conductor]/[scheduler] workers by the hosts.',
    'Quotas in config files are defaults: a quota set through the API '
    '(openstack quota set) overrides them.',
)


def generate(inputs):
    """The tuning profile for ``inputs`` (an :class:`inputs.Inputs`).

    Raises :class:`~exception.ImpossibleInput` when no setting can serve
    the storm (e.g. a fixed ``db_max_connections`` too small).
    """
    db = budget.db_budget(inputs)
    settings = (nova.settings(inputs, db) + cinder.settings(inputs, db) +
                placement.settings(inputs, db) + rabbitmq.settings(inputs) +
                mariadb.settings(inputs, db))
    notes = ((THREADING_NOTES if inputs.threaded else EVENTLET_NOTES) +
             COMMON_NOTES)
    figures = (
        ('builds per compute (B)', budget.builds_per_compute(inputs)),
        ('builds in flight min(N, H x B)', budget.builds_in_flight(inputs)),
        ('conductor threads per process', budget.conductor_threads(inputs)),
        ('DB connections needed', db.needed),
        ('DB budget', db.describe()),
        ('AMQP connections (upper bound)', rabbitmq.connections(inputs)),
    )
    return setting.Profile(inputs=inputs, settings=tuple(settings),
                           notes=notes, figures=figures)
