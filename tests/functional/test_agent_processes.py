"""Two hosts' real ``fastboot agent`` and ``fastboot create`` processes.

One machine, two state paths exporting on 127.0.0.1, one real
``fastboot-coordinator``: what the multi-host demo does, without the
network namespaces and guests. A host's re-parenting events are written
by every process of the host that joins a tree (the agent embedded in
``fastboot create`` and the ``fastboot agent`` daemon): each real change
must be recorded once.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import fixtures

from tests.functional import base
from tests.functional.coordinator import test_processes
from tests.functional import test_export_auth

SECRET = test_processes.SECRET
INTERVAL = 0.2


class Host:

    def __init__(self, name, coordinator_url, workdir, psk_file):
        self.name = name
        # Short: the state path holds unix sockets.
        self.state_path = tempfile.mkdtemp(prefix='fbh-', dir='/tmp')
        self.port = test_processes.free_port()
        self.conf_file = os.path.join(workdir, '%s.conf' % name)
        with open(self.conf_file, 'w') as f:
            f.write('[fastboot]\n'
                    'state_path = %s\n'
                    'export_address = 127.0.0.1\n'
                    'export_psk_file = %s\n'
                    'export_port_min = %d\n'
                    'export_port_max = %d\n'
                    'coordinator_url = %s/v1\n'
                    'coordinator_secret = %s\n'
                    'host_name = %s\n'
                    'heartbeat_interval = %s\n' % (
                        self.state_path, psk_file, self.port, self.port,
                        coordinator_url, SECRET, name, INTERVAL))
        self.log_file = os.path.join(workdir, '%s-agent.log' % name)
        self.agent = None

    def fastboot(self, *argv):
        proc = subprocess.run(
            [test_processes.script('fastboot'), '--config-file',
             self.conf_file] + list(argv), capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120, check=False)
        if proc.returncode:
            raise AssertionError('%s: fastboot %s: %s' % (
                self.name, ' '.join(argv), proc.stderr))
        return proc.stdout

    def start_agent(self):
        with open(self.log_file, 'ab') as log:
            self.agent = subprocess.Popen(
                [test_processes.script('fastboot'), '--config-file',
                 self.conf_file, 'agent'], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        token = os.path.join(self.state_path, 'coordinator-token')
        deadline = time.monotonic() + 60
        while not os.path.exists(token):
            if self.agent.poll() is not None or time.monotonic() > deadline:
                with open(self.log_file, errors='replace') as f:
                    raise AssertionError('%s: the agent did not register: '
                                         '%s' % (self.name, f.read()))
            time.sleep(0.1)

    def stop(self):
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(15)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        subprocess.run([test_processes.script('fastboot'), '--config-file',
                        self.conf_file, 'shutdown'], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60, check=False)
        shutil.rmtree(self.state_path, ignore_errors=True)

    def events(self):
        try:
            with open(os.path.join(self.state_path,
                                   'reparent-events.jsonl')) as f:
                return [(e['volume'], e['old_parent'], e['new_parent'],
                         e['reason']) for e in map(json.loads, f)]
        except FileNotFoundError:
            return []

    def image(self, name):
        images = json.loads(self.fastboot('image', 'list', '-f', 'json'))
        return next(i for i in images if i['name'] == name)


class TestAgentProcesses(base.TestCase):

    def setUp(self):
        super().setUp()
        workdir = self.useFixture(fixtures.TempDir()).path
        self.origin = os.path.join(workdir, 'origin.raw')
        with open(self.origin, 'wb') as f:
            f.truncate(4 * 1024 * 1024)
            f.write(b'\x01' * base.CLUSTER)
        coordinator = test_processes.Replica(
            'coordinator', workdir, {'coordinator': {
                'state_path': os.path.join(workdir, 'coordinator'),
                'auth_strategy': 'shared_secret',
                'shared_secret': SECRET,
                # A chain: host-a under the origin, host-b under host-a.
                'fanout': 1,
                'host_timeout': 3600}})
        self.addCleanup(coordinator.stop)
        os.makedirs(os.path.join(workdir, 'coordinator'))
        coordinator.db_sync()
        coordinator.start()
        # The hosts export to each other as in production: TLS-PSK.
        psk = test_export_auth.write_psk(workdir)
        self.hosts = [Host(name, coordinator.url, workdir, psk)
                      for name in ('host-a', 'host-b')]
        for host in self.hosts:
            self.addCleanup(host.stop)

    def test_first_assignment_is_recorded_once(self):
        a, b = self.hosts
        for host in self.hosts:
            host.start_agent()
        a.fastboot('create', 'vm-a', 'img', self.origin)
        # host-b joins second: its parent is host-a. `fastboot create`'s
        # agent applies that; the agent process must find it done.
        b.fastboot('create', 'vm-b1', 'img', self.origin)
        b.fastboot('create', 'vm-b2', 'img', self.origin)
        # Give the agents many rounds to (wrongly) apply it again.
        time.sleep(20 * INTERVAL)
        self.assertEqual([], a.events())
        self.assertEqual([('img', None, 'host-a', 'assigned')], b.events())
        self.assertEqual([a.image('img')['export_url']],
                         b.image('img')['parents'])
        self.assertEqual([], a.image('img')['parents'])
