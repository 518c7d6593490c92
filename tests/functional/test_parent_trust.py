"""A registered host must not point other hosts' caches at local sockets.

The attack of issue 10 item 1, with the real pieces: a real
``fastboot-coordinator`` process, two real qemu engines (their own
qemu-storage-daemons) and a host agent with the real client. A host
registered with the shared secret reports, for the victim's volume, an
export URL naming another engine's local NBD socket (another image:
another tenant's bytes), or another host's TCP export of another image.
The coordinator refuses it (400); injected past the coordinator (a
compromised one), the agent and the engine refuse it too; the victim's
cache still serves its own bytes.
"""

import os
import tempfile

import fixtures
import requests

from fastboot_nova import exception
from fastboot_nova.hierarchy import agent as agent_mod
from fastboot_nova.hierarchy import client as client_mod
from tests.functional import base
from tests.functional.coordinator import test_processes
from tests.functional import test_export_auth

SECRET = test_processes.SECRET


class TestParentTrust(base.TestCase):

    def setUp(self):
        super().setUp()
        workdir = self.useFixture(fixtures.TempDir()).path
        self.coordinator = test_processes.Replica(
            'coordinator', workdir, {'coordinator': {
                'state_path': os.path.join(workdir, 'coordinator'),
                'auth_strategy': 'shared_secret',
                'shared_secret': SECRET,
                'host_timeout': 3600}})
        self.addCleanup(self.coordinator.stop)
        os.makedirs(os.path.join(workdir, 'coordinator'))
        self.coordinator.db_sync()
        self.coordinator.start()
        self.origin = self.useFixture(base.OriginFixture())
        keys = tempfile.mkdtemp(prefix='fbk-', dir='/tmp')
        self.addCleanup(os.system, 'rm -rf %s' % keys)
        psk = test_export_auth.write_psk(keys)
        port = test_processes.free_port()
        # The victim exports over TCP with TLS-PSK, as hosts do.
        self.victim = self.useFixture(base.EngineFixture(base.make_conf(
            export_address='127.0.0.1', export_psk_file=psk,
            export_port_min=port, export_port_max=port))).engine
        self.vm = self.victim.create('vm-v', 'img', self.origin.url)
        # Another engine of the machine (another tenant's image) with
        # bytes unlike the origin's, served on its local socket.
        self.other = self.useFixture(base.EngineFixture()).engine
        other_origin = os.path.join(workdir, 'other.raw')
        with open(other_origin, 'wb') as f:
            f.write(b'\xee' * base.IMAGE_SIZE)
        self.other.create('vm-o', 'otherimg', other_origin)
        self.unix_url = 'nbd+unix:///otherimg?socket=%s' % (
            self.other.nbd_socket)
        self.client = client_mod.CoordinatorClient(
            self.coordinator.url + '/v1', 'victim', secret=SECRET)
        self.agent = agent_mod.HostAgent(self.victim, self.client,
                                         address='127.0.0.1')
        self.agent.register()
        self.agent.join('img')
        self.evil = self._register('evil')

    def _register(self, name):
        resp = requests.post(self.coordinator.url + '/v1/hosts',
                             json={'name': name, 'address': '127.0.0.1'},
                             headers={'X-Fastboot-Secret': SECRET},
                             timeout=30)
        self.assertEqual(201, resp.status_code, resp.text)
        return resp.json()['host']['token']

    def _report(self, export_url, host='evil', volume='img'):
        return requests.put(
            '%s/v1/hosts/%s/caches/%s' % (self.coordinator.url, host,
                                          volume),
            json={'export_url': export_url},
            headers={'X-Fastboot-Secret': SECRET,
                     'X-Fastboot-Host-Token': self.evil}, timeout=30)

    def assert_own_bytes(self):
        base.qemu_io(self.vm.path, 'read -P %d 0 64k' %
                     base.OriginFixture.pattern(0),
                     'read -P %d 1M 64k' % base.OriginFixture.pattern(16))
        self.assertEqual(
            (), next(i for i in self.victim.list_images()
                     if i.name == 'img').parents)

    def assert_refused(self, resp, words):
        self.assertEqual(400, resp.status_code, resp.text)
        message = resp.json()['error']['message']
        self.assertIn('export_url', message)
        self.assertIn(words, message)

    def test_coordinator_refuses_a_unix_socket_export(self):
        self.assert_refused(self._report(self.unix_url), 'nbd://')
        # Nothing was recorded: the tree of img holds the victim only.
        tree = requests.get(
            self.coordinator.url + '/v1/volumes/img/tree',
            headers={'X-Fastboot-Secret': SECRET}, timeout=30).json()
        self.assertEqual(['victim'], [h['host'] for h in tree['hosts']])
        self.assert_own_bytes()

    def test_coordinator_refuses_another_image_s_tcp_export(self):
        other = 'nbd://127.0.0.1:%d/otherimg' % test_processes.free_port()
        self.assert_refused(self._report(other), 'img')

    def test_agent_refuses_an_injected_unix_parent(self):
        # A compromised coordinator answers with the socket URL.
        evil = client_mod.Parents(
            primary=client_mod.Source('evil', self.unix_url))
        self.useFixture(fixtures.MockPatchObject(
            self.client, 'parents', return_value=evil))
        self.agent.rejoin('img')
        self.assert_own_bytes()
        # Its own export, injected the same way, is refused too.
        own = client_mod.Parents(primary=client_mod.Source(
            'evil', self.victim.export_url('img')))
        self.client.parents.return_value = own
        self.agent.rejoin('img')
        self.assert_own_bytes()

    def test_engine_refuses_a_unix_parent_and_its_own_export(self):
        for url in (self.unix_url, self.victim.export_url('img'),
                    'nbd+unix:///img?socket=%s' % self.victim.nbd_socket):
            self.assertRaises(exception.InvalidLocation,
                              self.victim.reparent, 'img', url)
        self.assert_own_bytes()
        # The daemon is alive and answers QMP.
        with self.victim.daemon.qmp() as qmp:
            qmp.execute('query-block-exports')
