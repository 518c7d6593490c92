"""Where a ministack keeps its files, and which ports it listens on.

One run directory holds everything a running ministack owns (configs,
logs, pid files, databases, service state), so ``down`` can remove it and
leave nothing behind. The virtualenv with the OpenStack services lives in
a cache directory beside it (rebuilt when the constraints file changes),
because it takes minutes to build and does not change between runs.
"""

import dataclasses
import hashlib
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
CONSTRAINTS = pathlib.Path(__file__).resolve().parent / 'constraints.txt'

# Offsets from the port base (MINISTACK_PORT_BASE, default 22000).
PORT_OFFSETS = {
    'mariadb': 306,
    'epmd': 369,
    'rabbitmq': 672,
    'rabbitmq_dist': 673,
    'keystone': 500,
    'glance': 292,
    'placement': 778,
    'nova': 774,
    'neutron': 696,
    'cinder': 776,
    'coordinator': 870,
    'coordinator2': 871,
    'redis': 379,
    'ceph_mon': 789,
}

COMPUTES = ('ms-c1', 'ms-c2')


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths and ports of one ministack."""

    run_dir: pathlib.Path
    cache_dir: pathlib.Path
    port_base: int = 22000

    @classmethod
    def from_env(cls, environ=None):
        environ = os.environ if environ is None else environ
        return cls(
            run_dir=pathlib.Path(environ.get('MINISTACK_DIR', '/var/tmp/ms')),
            cache_dir=pathlib.Path(
                environ.get('MINISTACK_CACHE', '/var/tmp/ms-cache')),
            port_base=int(environ.get('MINISTACK_PORT_BASE', '22000')))

    def port(self, name):
        return self.port_base + PORT_OFFSETS[name]

    def url(self, name, path=''):
        return 'http://127.0.0.1:%d%s' % (self.port(name), path)

    @property
    def etc(self):
        return self.run_dir / 'etc'

    @property
    def logs(self):
        return self.run_dir / 'logs'

    @property
    def pids(self):
        return self.run_dir / 'pids'

    def data(self, name):
        """The private state directory of one service."""
        return self.run_dir / 'data' / name

    @property
    def venv(self):
        return self.cache_dir / 'venv'

    @staticmethod
    def constraints_digest():
        return hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()

    def bin(self, name):
        return self.venv / 'bin' / name

    def make_dirs(self):
        for path in (self.etc, self.logs, self.pids, self.run_dir / 'data'):
            path.mkdir(parents=True, exist_ok=True)
