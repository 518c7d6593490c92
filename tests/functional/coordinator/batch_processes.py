"""A real coordinator process (and runner processes) on a real database,
with auth_token and the cloud faked by fake_openstack."""

import os
import subprocess
import sys
import time

import fixtures
from oslotest import base
import requests

from tests.functional.coordinator import test_processes
from tests.unit.coordinator import fake_cloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
PROJECT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
TOKEN = 'user-a:%s:member' % PROJECT


class Process:

    def __init__(self, which, conf_file, log_file, env):
        self.which = which
        self.conf_file = conf_file
        self.log_file = log_file
        self.env = env
        self.proc = None

    def start(self):
        with open(self.log_file, 'ab') as log:
            self.proc = subprocess.Popen(
                [sys.executable, '-m',
                 'tests.functional.coordinator.fake_openstack', self.which,
                 '--config-file', self.conf_file],
                cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self):
        try:
            with open(self.log_file, errors='replace') as f:
                return f.read()[-3000:]
        except FileNotFoundError:
            return ''


class BatchProcessTestCase(base.BaseTestCase):

    def database_connection(self):
        return None

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.port = test_processes.free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        cloud_file = os.path.join(self.workdir, 'cloud.json')
        self.store = fake_cloud.Store(cloud_file)
        self.env = dict(os.environ, FASTBOOT_FAKE_CLOUD=cloud_file,
                        PYTHONPATH=ROOT)
        options = {
            'DEFAULT': {'debug': 'true'},
            'coordinator': {'state_path': self.workdir,
                            'auth_strategy': 'keystone',
                            'bind_host': '127.0.0.1',
                            'bind_port': self.port},
            'batches': {'poll_interval': '0.2', 'retry_interval': '0.1'},
            # Where clients would find Keystone: the coordinator refuses
            # to start in keystone mode without it (auth_token is faked).
            'keystone_authtoken': {
                'www_authenticate_uri': 'http://keystone.test/v3'},
        }
        if self.database_connection():
            options['database'] = {'connection': self.database_connection()}
        self.conf_file = os.path.join(self.workdir, 'fastboot.conf')
        with open(self.conf_file, 'w') as f:
            for group, values in options.items():
                f.write('[%s]\n' % group)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        subprocess.run([test_processes.script('fastboot-coordinator-manage'),
                        '--config-file', self.conf_file, 'db', 'sync'],
                       check=True, capture_output=True, timeout=120)
        self.api = self.process('coordinator')
        self.api.start()
        self.wait_api()

    def process(self, which, name=None):
        proc = Process(which, self.conf_file, os.path.join(
            self.workdir, '%s.log' % (name or which)), self.env)
        self.addCleanup(proc.stop)
        self.addOnException(lambda exc_info: self.addDetail(
            '%s log' % (name or which),
            __import__('testtools').content.text_content(proc.log_tail())))
        return proc

    def wait_api(self):
        deadline = time.monotonic() + test_processes.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.api.proc.poll() is not None:
                self.fail('coordinator exited: %s' % self.api.log_tail())
            try:
                if requests.get(self.url + '/', timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.fail('coordinator did not start: %s' % self.api.log_tail())

    def http(self, method, path, body=None, token=TOKEN, key=None):
        headers = {'X-Auth-Token': token}
        if key:
            headers['Idempotency-Key'] = key
        return requests.request(method, self.url + path, json=body,
                                headers=headers, timeout=60)

    def wait_state(self, batch_id, states, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.http('GET', '/v1/batches/' + batch_id).json()[
                'batch']
            if batch['state'] in states:
                return batch
            time.sleep(0.2)
        self.fail('batch %s still %s' % (batch_id, batch['state']))
