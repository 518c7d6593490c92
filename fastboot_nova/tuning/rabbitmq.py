"""rabbitmq.conf (the sysctl-style file) and RabbitMQ's file descriptors.

Every oslo.messaging process opens up to rpc_conn_pool_size connections
for sending, plus one for its RPC server and one for notifications; each
is a file descriptor in the broker.
"""

from fastboot_nova.tuning import assumptions as a
from fastboot_nova.tuning import budget
from fastboot_nova.tuning import setting as s


def connections(inputs):
    """Upper bound of AMQP connections the deployment may open."""
    threads = budget.conductor_threads(inputs)
    compute_pool = max(30, budget.builds_per_compute(inputs) + 10)
    cinder_pool = max(64, min(budget.attachments_in_flight(inputs),
                              a.THREAD_CAP['eventlet']))
    control = inputs.api_workers + inputs.conductors + inputs.schedulers
    cinder = inputs.cinder_api_workers + budget.CINDER_SERVICES
    return (control * (threads + 2) + inputs.computes * (compute_pool + 2) +
            cinder * (cinder_pool + 2))


def settings(inputs):
    conns = connections(inputs)
    return [
        s.Setting('rabbitmq', None, 'heartbeat', a.HEARTBEAT_SECONDS,
                  s.AT_LEAST, 60,
                  'the broker offers the lower of its and the client\'s '
                  'heartbeat: below the clients\' threshold it undoes it',
                  "[oslo_messaging_rabbit] heartbeat_timeout_threshold"),
        s.Setting('system', None, 'rabbitmq-server LimitNOFILE',
                  max(65536, conns + 1024), s.AT_LEAST, None,
                  'one descriptor per AMQP connection (at most %d here) '
                  'plus the broker\'s own files' % conns,
                  'max(65536, connections + 1024); connections = '
                  '(W+C+S) x (pool+2) + H x (compute pool+2) + cinder '
                  'processes x (pool+2)'),
    ]
