"""Fixtures for functional tests against real qemu-img and
qemu-storage-daemon."""

import hashlib
import os
import shutil
import subprocess
import tempfile

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova.demo import origin as origin_mod
from fastboot_nova import storage

CLUSTER = 64 * 1024
IMAGE_SIZE = 64 * 1024 * 1024


def make_conf(**overrides):
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    fastboot_conf.set_overrides(conf, **overrides)
    return conf


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def qemu_io(path, *commands, fmt='qcow2', read_only=False):
    """Run qemu-io commands on ``path``; returns stdout; raises on error."""
    argv = ['qemu-io', '-f', fmt] + (['-r'] if read_only else [])
    for command in commands:
        argv += ['-c', command]
    proc = subprocess.run(argv + [path], capture_output=True, text=True,
                          check=False)
    # qemu-io exits 0 even when a pattern check fails: look at the output.
    if proc.returncode or 'failed' in proc.stdout + proc.stderr:
        raise AssertionError('qemu-io %s on %s: %s %s' % (
            commands, path, proc.stdout, proc.stderr))
    return proc.stdout


class EngineFixture(fixtures.Fixture):
    """A QemuEngine on a short private state path; daemon stopped after."""

    def __init__(self, conf=None, state_path=None):
        super().__init__()
        self.conf = conf or make_conf()
        self.state_path = state_path

    def _setUp(self):
        if self.state_path is None:
            self.state_path = tempfile.mkdtemp(prefix='fbt-', dir='/tmp')
            self.addCleanup(shutil.rmtree, self.state_path,
                            ignore_errors=True)
        self.engine = storage.get_engine(self.conf,
                                         state_path=self.state_path)
        self.addCleanup(self.engine.shutdown)


class OriginFixture(fixtures.Fixture):
    """A 64 MiB raw origin with known data, served over NBD."""

    def __init__(self, data_clusters=64):
        super().__init__()
        self.data_clusters = data_clusters

    def _setUp(self):
        self.dir = tempfile.mkdtemp(prefix='fbo-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.path = os.path.join(self.dir, 'origin.raw')
        with open(self.path, 'wb') as f:
            f.truncate(IMAGE_SIZE)
            # Cluster i of the data area holds the byte (i % 250) + 1, so
            # every cluster is non-zero and checkable with qemu-io -P.
            for i in range(self.data_clusters):
                f.write(bytes([i % 250 + 1]) * CLUSTER)
        self.sha256 = sha256(self.path)
        self.server = origin_mod.OriginServer(self.path, run_dir=self.dir)
        self.server.start()
        self.addCleanup(self.server.stop)
        self.url = self.server.url

    @staticmethod
    def pattern(cluster):
        return cluster % 250 + 1


class TestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        for tool in ('qemu-img', 'qemu-io', 'qemu-storage-daemon'):
            if shutil.which(tool) is None:
                self.fail('%s is not installed; run tools/install-deps.sh'
                          % tool)
