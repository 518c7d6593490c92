"""``fastboot-runner``: the batch runner as a process.

Reads the coordinator's configuration (the same ``[database]`` and
``[coordinator] backend_url``: runners and API replicas share both) and
``[batches]``/``[batches_auth]``. Runs until SIGTERM/SIGINT; a batch it
was working on is resumed by another runner (or by itself, restarted).
"""

import signal
import sys
import threading

from fastboot_nova.coordinator.batches import clients
from fastboot_nova.coordinator.batches import runner as runner_mod
from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import exception
from fastboot_nova.coordinator import locks


def build(conf, clouds=None):
    db = db_api.Database(conf)
    deploy.check_database(db)
    coordination = locks.Coordination(conf, membership=False)
    coordination.start()
    return runner_mod.Runner(conf, db, coordination,
                             clouds or clients.CloudFactory(conf),
                             context.admin_context())


def main(argv=None, clouds=None):
    conf = config.parse_args(sys.argv[1:] if argv is None else argv,
                             prog='fastboot-runner')
    try:
        runner = build(conf, clouds)
    except exception.CoordinatorError as e:
        print('fastboot-runner: %s' % e.msg, file=sys.stderr)
        return 1
    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run_forever(stop)
    runner.coordination.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
