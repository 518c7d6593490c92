"""cinder.conf: the attachment every fastboot server makes, and the
volumes of the stock comparison.

Every fastboot server creates and completes one Cinder attachment of the
shared origin (imageops._attach); cinder-api serialises attachment
updates per volume, and each one is an RPC call to cinder-volume. Cinder
29 still runs eventlet by default (``OS_CINDER_DISABLE_EVENTLET_PATCHING``
switches it to threads), so its executor threads are green threads.
"""

import math

from fastboot_nova.tuning import assumptions as a
from fastboot_nova.tuning import budget
from fastboot_nova.tuning import setting as s

RABBIT = 'oslo_messaging_rabbit'


def _cinder(section, name, value, compare, default, reason, formula):
    return s.Setting('cinder', section, name, value, compare, default,
                     reason, formula)


def rpc_response_timeout(inputs):
    queue = budget.attachments_in_flight(inputs)
    return max(60, math.ceil(2 * queue * a.ATTACH_SECONDS))


def settings(inputs, db):
    queue = budget.attachments_in_flight(inputs)
    threads = max(64, min(queue, a.THREAD_CAP['eventlet']))
    timeout = rpc_response_timeout(inputs)
    return [
        _cinder('DEFAULT', 'rpc_response_timeout', timeout, s.AT_LEAST, 60,
                "every server's attachment update of the one shared "
                'origin queues at cinder-volume behind the others',
                'max(60, ceil(2 x min(N, H x B) x %.1f s))'
                % a.ATTACH_SECONDS),
        _cinder('DEFAULT', 'executor_thread_pool_size', threads,
                s.AT_LEAST, 64,
                'cinder-volume serves one attachment call per build in '
                'flight', 'max(64, min(N, H x B))'),
        _cinder(RABBIT, 'rpc_conn_pool_size', threads, s.AT_LEAST, 30,
                'every cinder-api request thread may call cinder-volume '
                'at once', 'executor_thread_pool_size'),
        _cinder(RABBIT, 'heartbeat_timeout_threshold', a.HEARTBEAT_SECONDS,
                s.AT_LEAST, 60,
                'a busy cinder-volume can miss 60 s of heartbeats in a '
                'storm', '%d' % a.HEARTBEAT_SECONDS),
        _cinder('DEFAULT', 'service_down_time', timeout + 20, s.AT_LEAST,
                60, 'a busy cinder-volume reports late; the scheduler must '
                'not drop it meanwhile',
                'rpc_response_timeout + 2 x report_interval 10'),
        _cinder('DEFAULT', 'osapi_volume_workers', inputs.cinder_api_workers,
                s.AT_MOST, None,
                'the DB budget counts this many cinder-api processes '
                '(uwsgi deployments set it in the uwsgi file instead)',
                'cinder API workers'),
        _cinder('database', 'max_pool_size', db.pool_size, s.AT_MOST, 5,
                "pool + overflow of every process is MariaDB's "
                'max_connections budget', db.describe()),
        _cinder('database', 'max_overflow', db.overflow, s.AT_MOST, 50,
                'the default 50 lets each process open 55 connections',
                'per-engine budget %d - max_pool_size %d'
                % (db.per_engine, db.pool_size)),
        _cinder('database', 'pool_timeout',
                budget.pool_timeout(threads, db.per_engine), s.AT_LEAST, 30,
                'green threads queue for a pooled connection',
                'max(30, ceil(2 x ceil(threads %d / %d) x %.1f s))'
                % (threads, db.per_engine, a.DB_HOLD_SECONDS)),
        _cinder('DEFAULT', 'quota_volumes', inputs.servers, s.AT_LEAST, 10,
                'the stock way makes one volume per server (a quota set '
                'by the API overrides this)', 'N'),
        _cinder('DEFAULT', 'quota_gigabytes',
                inputs.servers * inputs.volume_gb, s.AT_LEAST, 1000,
                'N volumes of the stock way fit the gigabytes quota',
                'N x volume GiB'),
    ]
