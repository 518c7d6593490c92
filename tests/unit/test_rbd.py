"""Cinder rbd connection_info -> rbd:// origin -> QEMU rbd blockdev."""

import json
import os
import stat

import fixtures
from oslotest import base

from fastboot_nova import exception
from fastboot_nova.storage import location
from fastboot_nova.storage.qemu import cachegroup
from fastboot_nova.storage import rbd

KEY = 'AQDeadBeefAAAAAAc2VjcmV0c2VjcmV0c2VjcQ=='
VOLUME = 'volume-6f1c0b4e-2c53-4b38-9d3c-0d1c2f1e9a77'


class RbdBase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf = os.path.join(self.tmp, 'ceph.conf')
        with open(self.conf, 'w') as f:
            f.write('[global]\nmon_host = 127.0.0.1:6789\n')
        self.key_dir = os.path.join(self.tmp, 'keys')

    def info(self, **data):
        """What Cinder 29's RBD driver returns from initialize_connection."""
        base_data = {
            'name': 'volumes/' + VOLUME, 'hosts': ['127.0.0.1', '::1'],
            'ports': ['6789', '6790'], 'cluster_name': 'ceph',
            'auth_enabled': True, 'auth_username': 'cinder',
            'secret_type': 'ceph',
            'secret_uuid': '457eb676-33da-42ec-9a8c-9293d545c337',
            'volume_id': VOLUME[7:], 'discard': True, 'keyring': None,
            'qos_specs': None, 'access_mode': 'rw', 'encrypted': False}
        base_data.update(data)
        return {'driver_volume_type': 'rbd', 'data': base_data}

    def url(self, **data):
        return rbd.location_from_connection_info(
            self.info(**data), conf=self.conf, key_dir=self.key_dir)


class TestConnectionInfo(RbdBase):

    def test_cinder_connection_info(self):
        url = self.url()
        self.assertEqual(
            'rbd://volumes/%s?conf=%s&user=cinder&mon=127.0.0.1:6789'
            '&mon=[::1]:6790' % (VOLUME, self.conf), url)
        loc = location.parse(url)
        self.assertEqual(('volumes', VOLUME, 'cinder'),
                         (loc.pool, loc.image, loc.user))
        self.assertEqual((('127.0.0.1', 6789), ('::1', 6790)), loc.mons)
        self.assertEqual(url, loc.url)
        self.assertIsNone(loc.key_file)
        self.assertEqual([], loc.objects())

    def test_flat_attachment_form(self):
        info = self.info()
        flat = dict(info['data'], driver_volume_type='rbd',
                    attachment_id='6d5ab9a4-1bb0-4f5e-9f0e-2d1f8f9b1c11')
        self.assertEqual(self.url(), rbd.location_from_connection_info(
            flat, conf=self.conf, key_dir=self.key_dir))

    def test_blockdev_is_read_only_rbd_node(self):
        loc = location.parse(self.url())
        self.assertEqual(
            {'driver': 'rbd', 'node-name': 'n0', 'pool': 'volumes',
             'image': VOLUME, 'conf': self.conf, 'user': 'cinder',
             'server': [{'host': '127.0.0.1', 'port': '6789'},
                        {'host': '::1', 'port': '6790'}],
             'read-only': True, 'auto-read-only': False},
            loc.blockdev('n0', reconnect_delay=5))

    def test_backing_name_is_a_json_rbd_spec_without_key(self):
        loc = location.parse(self.url())
        self.assertTrue(loc.backing_name.startswith('json:'))
        spec = json.loads(loc.backing_name[5:])
        self.assertEqual(('rbd', 'volumes', VOLUME),
                         (spec['driver'], spec['pool'], spec['image']))

    def test_no_hosts_uses_conf_monitors(self):
        url = self.url(hosts=[], ports=[])
        self.assertNotIn('mon=', url)
        self.assertNotIn('server', location.parse(url).blockdev('n'))

    def test_default_conf_follows_cluster_name(self):
        e = self.assertRaises(
            exception.InvalidLocation, rbd.location_from_connection_info,
            self.info(cluster_name='prod'))
        self.assertIn('/etc/ceph/prod.conf does not exist', str(e))

    def test_keyring_becomes_0600_key_file_and_secret_object(self):
        url = self.url(keyring='[client.cinder]\n\tkey = %s\n' % KEY)
        self.assertNotIn(KEY, url)
        loc = location.parse(url)
        st = os.stat(loc.key_file)
        self.assertEqual(0o600, stat.S_IMODE(st.st_mode))
        self.assertEqual(0o700, stat.S_IMODE(
            os.stat(self.key_dir).st_mode))
        with open(loc.key_file) as f:
            self.assertEqual(KEY, f.read())
        spec = loc.blockdev('n0')
        self.assertEqual(loc.secret_id, spec['key-secret'])
        self.assertEqual(['cephx'], spec['auth-client-required'])
        self.assertNotIn(KEY, json.dumps(spec))
        self.assertEqual([{'qom-type': 'secret', 'id': loc.secret_id,
                           'file': loc.key_file, 'format': 'base64'}],
                         loc.objects())
        self.assertNotIn(KEY, json.dumps(loc.objects()))
        # The same cluster and client reuse the file.
        self.assertEqual(url, self.url(
            keyring='[client.cinder]\n\tkey = %s\n' % KEY))

    def test_keyring_without_key_dir_refused(self):
        e = self.assertRaises(
            exception.InvalidLocation, rbd.location_from_connection_info,
            self.info(keyring='[client.cinder]\nkey = %s\n' % KEY),
            conf=self.conf)
        self.assertIn('no key directory', str(e))

    def test_bad_keyring_refused_and_never_shown(self):
        for keyring in ('key = short', '[c]\nkey = %s\nkey = %s\n' % (
                KEY, KEY), 'nothing', 42):
            e = self.assertRaises(exception.InvalidLocation, self.url,
                                  keyring=keyring)
            self.assertNotIn(KEY, str(e))
        self.assertFalse(os.path.exists(self.key_dir))

    def test_bad_fields_refused(self):
        bad = [
            {'name': 'volumes'}, {'name': 'a/b/c'}, {'name': '/img'},
            {'name': 'pool/'}, {'name': 'po ol/img'}, {'name': 'p/i:conf=x'},
            {'name': 'p/img\n'}, {'name': 'p/-x'}, {'name': 'p/' + 'x' * 300},
            {'name': None}, {'name': 42},
            {'hosts': ['127.0.0.1'], 'ports': []},
            {'hosts': ['bad host'], 'ports': ['6789']},
            {'hosts': ['h;reboot'], 'ports': ['6789']},
            {'hosts': ['0.0.0.0'], 'ports': ['6789']},
            {'hosts': ['127.0.0.1\n'], 'ports': ['6789']},
            {'hosts': ['127.0.0.1'], 'ports': ['0']},
            {'hosts': ['127.0.0.1'], 'ports': ['65536']},
            {'hosts': ['127.0.0.1'], 'ports': ['67a']},
            {'hosts': ['127.0.0.1'], 'ports': [True]},
            {'hosts': '127.0.0.1', 'ports': '6789'},
            {'hosts': ['127.0.0.1'] * 17, 'ports': ['6789'] * 17},
            {'auth_username': 'cin der'}, {'auth_username': 'a:b'},
            {'auth_username': 'admin\n'}, {'auth_username': None},
            {'cluster_name': '../x'}, {'secret_type': 'volume'},
            {'secret_uuid': 'not-a-uuid'},
        ]
        for data in bad:
            self.assertRaises(exception.InvalidLocation, self.url, **data)

    def test_not_rbd_refused(self):
        for info in (None, [], {'driver_volume_type': 'iscsi', 'data': {}},
                     {'driver_volume_type': 'rbd', 'data': 'x'}):
            self.assertRaises(exception.InvalidLocation,
                              rbd.location_from_connection_info, info,
                              conf=self.conf)


class TestParse(RbdBase):

    def good(self, query=''):
        return 'rbd://volumes/img1?conf=%s%s' % (self.conf, query)

    def test_minimal(self):
        loc = location.parse(self.good())
        self.assertEqual('rbd', loc.kind)
        self.assertIsNone(loc.path)
        self.assertFalse(loc.is_nbd)
        self.assertIsNone(loc.user)

    def test_bad_urls_refused(self):
        for url in (
                'rbd://volumes/img1',                       # no conf
                'rbd://volumes/img1?conf=relative.conf',
                'rbd://volumes/img1?conf=/no/such/ceph.conf',
                'rbd://volumes/img1?conf=/etc/../etc/ceph.conf',
                self.good('&user=a b'),
                self.good('&user=x&user=y'),
                self.good('&conf=%s' % self.conf),
                self.good('&mon=127.0.0.1'),
                self.good('&mon=127.0.0.1:99999'),
                self.good('&mon=h;x:6789'),
                self.good('&key=%s' % KEY),               # unknown, secret
                self.good('&key_file=/etc/passwd'),
                self.good('&key_file=relative'),
                self.good('#frag'),
                'rbd://user@volumes/img1?conf=' + self.conf,
                'rbd://volumes:6789/img1?conf=' + self.conf,
                'rbd://volumes/img1/extra?conf=' + self.conf,
                'rbd://vol umes/img1?conf=' + self.conf,
                'rbd:///img1?conf=' + self.conf):
            e = self.assertRaises(exception.InvalidLocation,
                                  location.parse, url)
            self.assertNotIn(KEY, str(e))

    def test_key_file_must_be_private(self):
        path = os.path.join(self.tmp, 'key')
        with open(path, 'w') as f:
            f.write(KEY)
        os.chmod(path, 0o644)
        e = self.assertRaises(exception.InvalidLocation, location.parse,
                              self.good('&key_file=' + path))
        self.assertIn('0600', str(e))
        os.chmod(path, 0o600)
        loc = location.parse(self.good('&key_file=' + path))
        self.assertEqual(path, loc.key_file)

    def test_canonical_url_is_stable(self):
        url = self.good('&mon=127.0.0.1:6789&user=cinder')
        loc = location.parse(url)
        self.assertEqual(loc.url, location.parse(loc.url).url)


class FakeQMP:

    def __init__(self, objects=()):
        self.calls = []
        self.objects = list(objects)

    def execute(self, cmd, **args):
        self.calls.append((cmd, args))
        if cmd == 'qom-list':
            return [{'name': n} for n in self.objects]
        if cmd == 'object-add':
            self.objects.append(args['id'])
        return {}


class TestOpenSource(RbdBase):

    def test_secret_added_once_before_the_node(self):
        loc = location.parse(self.url(
            keyring='[client.cinder]\nkey = %s\n' % KEY))
        qmp = FakeQMP()
        cachegroup.open_source(qmp, 'img', loc, 'raw', 'src0', 5)
        cachegroup.open_source(qmp, 'img', loc, 'raw', 'src1', 5)
        cmds = [c for c, _a in qmp.calls if c != 'qom-list']
        self.assertEqual(['object-add', 'blockdev-add', 'blockdev-add'],
                         cmds)
        self.assertNotIn(KEY, json.dumps(qmp.calls))

    def test_no_objects_for_plain_origins(self):
        loc = location.parse(self.url())
        qmp = FakeQMP()
        cachegroup.open_source(qmp, 'img', loc, 'raw', 'src0', 5)
        self.assertEqual(['blockdev-add'], [c for c, _a in qmp.calls])
