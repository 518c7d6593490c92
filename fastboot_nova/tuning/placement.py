"""placement.conf: every claim of the storm is a placement request.

Placement has no RPC; what breaks first is its database pool, budgeted
with everyone else's in MariaDB's max_connections. Placement leaves its
pool options unset (None), so SQLAlchemy's pool_size 5, max_overflow 10
and pool_timeout 30 apply: those are the defaults judged here.
"""

from fastboot_nova.tuning import budget
from fastboot_nova.tuning import setting as s

SECTION = 'placement_database'


def settings(inputs, db):
    # A placement process serves one request per WSGI thread; 64 is the
    # bound assumed for its queue on the pool.
    timeout = budget.pool_timeout(64, db.per_engine)
    return [
        s.Setting('placement', SECTION, 'max_pool_size', db.pool_size,
                  s.AT_MOST, 5, "pool + overflow of every process is "
                  "MariaDB's max_connections budget", db.describe()),
        s.Setting('placement', SECTION, 'max_overflow', db.overflow,
                  s.AT_MOST, 10,
                  'unset, SQLAlchemy allows 10 over the pool; the budget '
                  'counts the overflow set here',
                  'per-engine budget %d - max_pool_size %d'
                  % (db.per_engine, db.pool_size)),
        s.Setting('placement', SECTION, 'pool_timeout', timeout,
                  s.AT_LEAST, 30,
                  'request threads queue for a pooled connection',
                  'max(30, ceil(2 x ceil(64 / %d) x 0.5 s))'
                  % db.per_engine),
    ]
