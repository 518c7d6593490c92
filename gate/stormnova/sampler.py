"""What the storm samples while it runs: DB connections, queue depth, CPU.

A thread asks MariaDB (``SHOW GLOBAL STATUS``: Threads_connected now,
Max_used_connections since the storm's ``FLUSH STATUS``) every second
and RabbitMQ (``rabbitmqctl list_queues``: messages per queue) every few
seconds (each call starts an Erlang VM, so less often), and CPU seconds
per service come from ``/proc/PID/stat`` (utime + stime of the process
and its children alive at the end, e.g. gunicorn's worker).
"""

import os
import subprocess
import threading
import time

from ministack import proc
from ministack.services import mariadb
from ministack.services import rabbitmq

CLK_TCK = os.sysconf('SC_CLK_TCK')


def _db(stack, sql):
    out = subprocess.run(
        ['mariadb', '--no-defaults', '--protocol=socket',
         '--socket=%s' % (stack.layout.data(mariadb.NAME) / 'mariadbd.sock'),
         '-uroot', '-N', '-B', '-e', sql],
        capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split('\t', 1) for line in out.splitlines()
                if '\t' in line)


def db_status(stack):
    status = _db(stack, "SHOW GLOBAL STATUS WHERE Variable_name IN "
                        "('Threads_connected', 'Max_used_connections')")
    return {k: int(v) for k, v in status.items()}


def reset_db_peak(stack):
    _db(stack, 'FLUSH STATUS')


def queue_depths(stack):
    env = dict(os.environ)
    env.update(rabbitmq._env(stack))  # noqa: SLF001 - the node's address
    out = subprocess.run(
        ['rabbitmqctl', '-q', 'list_queues', 'name', 'messages'],
        capture_output=True, text=True, timeout=60, env=env,
        check=True).stdout
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


def cpu_seconds(pid):
    """CPU seconds of ``pid`` and its live descendants."""
    total = 0
    for p in [pid] + list(proc._descendants(pid)):  # noqa: SLF001
        try:
            with open('/proc/%d/stat' % p) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def cpu_by_service(pids):
    return {name: cpu_seconds(pid) for name, pid in pids.items() if pid}


class Sampler(threading.Thread):
    """Samples until :meth:`stop`; the peaks and a time series."""

    def __init__(self, stack, db_interval=1.0, mq_interval=3.0):
        super().__init__(daemon=True)
        self.stack = stack
        self.db_interval = db_interval
        self.mq_interval = mq_interval
        self._halt = threading.Event()
        self.started = time.monotonic()
        self.db = []       # (t, threads_connected)
        self.mq = []       # (t, total messages, deepest queue, its depth)
        self.max_used = 0
        self.errors = []

    def run(self):
        next_mq = 0.0
        while not self._halt.is_set():
            now = time.monotonic() - self.started
            try:
                st = db_status(self.stack)
                self.db.append((now, st.get('Threads_connected', 0)))
                self.max_used = max(self.max_used,
                                    st.get('Max_used_connections', 0))
            except (subprocess.SubprocessError, OSError, ValueError) as e:
                self.errors.append('db: %s' % e)
            if now >= next_mq:
                try:
                    depths = queue_depths(self.stack)
                    deepest = max(depths.items(), key=lambda kv: kv[1],
                                  default=('', 0))
                    self.mq.append((now, sum(depths.values())) + deepest)
                except (subprocess.SubprocessError, OSError) as e:
                    self.errors.append('rabbitmq: %s' % e)
                next_mq = now + self.mq_interval
            self._halt.wait(self.db_interval)

    def stop(self):
        self._halt.set()
        self.join()

    def summary(self):
        deepest = max(self.mq, key=lambda s: s[3], default=(0, 0, '', 0))
        return {
            'peak_db_connections': max(self.max_used,
                                       max((c for _, c in self.db),
                                           default=0)),
            'peak_threads_connected': max((c for _, c in self.db),
                                          default=0),
            'peak_queue_messages': max((s[1] for s in self.mq), default=0),
            'deepest_queue': deepest[2], 'deepest_queue_depth': deepest[3],
            'db_series': self.db, 'mq_series': [s[:2] for s in self.mq],
            'sampler_errors': self.errors[:5],
        }
