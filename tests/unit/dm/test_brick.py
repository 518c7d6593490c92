"""os-brick origins: validation, secret masking, record and restore."""

import json
import logging
import os
import stat

import fixtures
from oslo_config import cfg
import testtools

from fastboot_nova.cmd import cli
from fastboot_nova.conf import dm as dm_opts
from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.storage.dm import brick
from fastboot_nova.storage.dm import engine as dm_engine
from tests.unit.dm import fakes

SSD = '/dev/nvme0n1p2'
SSD_SECTORS = 4 * 2048 * 64
ORIGIN_SECTORS = 32768
PASSWORD = 'S3cretChapPassword'


def iscsi_props(**kw):
    props = {'target_portal': '10.0.0.7:3260',
             'target_iqn': 'iqn.2010-10.org.openstack:volume-1',
             'target_lun': 1, 'auth_method': 'CHAP',
             'auth_username': 'user1', 'auth_password': PASSWORD,
             'target_discovered': False}
    props.update(kw)
    return props


class FakeConnector:
    """An os-brick connector: each attach makes the next /dev/sdX appear.

    ``calls`` records ``(verb, properties)``; a password other than
    ``good`` fails the way a CHAP login does (the command line quoting
    the password in the error).
    """

    def __init__(self, kernel, good=PASSWORD, sectors=ORIGIN_SECTORS):
        self.kernel = kernel
        self.good = good
        self.sectors = sectors
        self.calls = []
        self.attached = {}
        self.names = iter('/dev/sd' + c for c in 'abcdefgh')

    def connect_volume(self, props):
        self.calls.append(('connect', dict(props)))
        if props.get('auth_password') not in (None, self.good):
            raise RuntimeError(
                'Unexpected error while running command. Command: '
                'iscsiadm -m node -T %s -p %s --op update -n '
                'node.session.auth.password -v %s Exit code: 24' % (
                    props['target_iqn'], props['target_portal'],
                    props['auth_password']))
        key = props.get('target_iqn') or props.get('device_path')
        if key not in self.attached:
            path = props.get('device_path') or next(self.names)
            self.attached[key] = path
            self.kernel.host_devices[path] = self.sectors
        return {'type': 'block', 'path': self.attached[key],
                'scsi_wwn': 'wwn-' + str(key)}

    def disconnect_volume(self, props, device_info, force=False,
                          ignore_errors=False):
        self.calls.append(('disconnect', dict(props)))
        key = props.get('target_iqn') or props.get('device_path')
        path = self.attached.pop(key, None)
        if path:
            self.kernel.host_devices.pop(path, None)

    def lose_all(self):
        """A reboot: sessions and devices are gone."""
        for path in self.attached.values():
            self.kernel.host_devices.pop(path, None)
        self.attached.clear()


class TestValidation(testtools.TestCase):

    def test_iscsi_accepted(self):
        protocol, props = brick.parse_connection_info(
            {'driver_volume_type': 'iscsi', 'data': iscsi_props()})
        self.assertEqual('ISCSI', protocol)
        self.assertEqual(iscsi_props(), props)

    def test_protocols(self):
        # Each protocol's properties come back unchanged, except that RBD
        # is always mapped on the host (do_local_attach).
        for kind, data, added in (
                ('nvmeof', {'target_nqn': 'nqn.2014-08.org.x:vol1',
                            'portals': [['10.0.0.7', '4420', 'tcp']],
                            'qos_specs': None, 'access_mode': 'ro'}, {}),
                ('rbd', {'name': 'volumes/volume-1', 'hosts': ['10.0.0.9'],
                         'ports': ['6789'], 'keyring': 'AQBx=='},
                 {'do_local_attach': True}),
                ('LOCAL', {'device_path': '/dev/vdb'}, {})):
            protocol, props = brick.parse_connection_info(
                {'driver_volume_type': kind, 'data': data})
            self.assertEqual(kind.upper(), protocol)
            self.assertEqual(dict(data, **added), props, kind)
            self.assertIsNot(data, props, kind)

    def test_rbd_is_attached_locally(self):
        _p, props = brick.parse_connection_info(
            {'driver_volume_type': 'rbd', 'data': {'name': 'v/v1'}})
        self.assertIs(True, props['do_local_attach'])

    def test_unknown_protocol_refused_first(self):
        for kind in ('fibre_channel', 'NFS', None, 3, 'iscsi; reboot'):
            e = self.assertRaises(brick.UnsupportedProtocol,
                                  brick.parse_connection_info,
                                  {'driver_volume_type': kind,
                                   'data': 'not even an object'})
            self.assertIn('supported: iscsi, local, nvmeof, rbd', e.msg)

    def test_bad_values_refused(self):
        for key, value in (('target_iqn', 'iqn;reboot'),
                           ('target_iqn', 'a b'), ('target_iqn', '$(id)'),
                           ('target_portal', 'x\n'),
                           ('target_iqn', 'x' * 2000),
                           ('target_lun', 1.5), ('target_lun', {'A': 1}),
                           ('target_portals', ['ok', '`id`']),
                           ('qos_specs', {'a': {'b': {'c': {'d': 1}}}}),
                           ('target_luns', list(range(100))),
                           ('portals', [['10.0.0.7', '4420', 'tcp;id']]),
                           ('target_iqn', 'caf\u00e9')):
            self.assertRaises(brick.InvalidConnectionInfo,
                              brick.validate_properties, 'ISCSI',
                              iscsi_props(**{key: value}))

    def test_bad_keys_and_shapes_refused(self):
        for data in ('x', [1], dict(iscsi_props(), **{'Bad-Key': 1}),
                     {k: v for k, v in iscsi_props().items()
                      if k != 'target_iqn'},
                     iscsi_props(auth_method='md5'),
                     iscsi_props(auth_password='')):
            self.assertRaises(brick.InvalidConnectionInfo,
                              brick.validate_properties, 'ISCSI', data)
        self.assertRaises(brick.InvalidConnectionInfo,
                          brick.validate_properties, 'LOCAL',
                          {'device_path': '/etc/passwd'})

    def test_secret_never_in_error(self):
        e = self.assertRaises(
            brick.InvalidConnectionInfo, brick.validate_properties,
            'ISCSI', iscsi_props(auth_password='pw;with;semicolons'))
        self.assertNotIn('pw;with', e.msg)
        self.assertIn('auth_password=***', e.msg)

    def test_mask(self):
        masked = brick.mask({'a': {'auth_password': 'x', 'keyring': 'k',
                                   'discovery_auth_password': 'd',
                                   'dhchap_secret': 's', 'target_lun': 1,
                                   'auth_username': 'u'},
                             'l': [{'secret_uuid': 'z'}]})
        self.assertEqual({'a': {'auth_password': '***', 'keyring': '***',
                                'discovery_auth_password': '***',
                                'dhchap_secret': '***', 'target_lun': 1,
                                'auth_username': 'u'},
                          'l': [{'secret_uuid': '***'}]}, masked)

    def test_load_connection_info(self):
        d = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(d, 'ci.json')
        with open(path, 'w') as f:
            f.write('{not json')
        self.assertRaises(brick.InvalidConnectionInfo,
                          brick.load_connection_info, path)
        self.assertRaises(brick.InvalidConnectionInfo,
                          brick.load_connection_info, path + '.missing')
        with open(path, 'w') as f:
            json.dump({'driver_volume_type': 'iscsi',
                       'data': iscsi_props()}, f)
        self.assertEqual(('ISCSI', iscsi_props()),
                         brick.load_connection_info(path))

    def test_make_connector_refuses_before_os_brick(self):
        self.assertRaises(brick.UnsupportedProtocol, brick.make_connector,
                          'FIBRE_CHANNEL')


class BrickEngineTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.priv = self.useFixture(fakes.PrivsepFixture({SSD: SSD_SECTORS}))
        self.kernel = self.priv.kernel
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(self.conf)
        dm_opts.register_opts(self.conf)
        self.conf([])
        self.conf.set_override('cache_device', SSD, 'fastboot_dm')
        # One identity per attached volume, whatever its /dev name.
        self.devices = fakes.FakeDevices(self.kernel)
        self.devices.identity = lambda path: '%d:wwn-vol1' % (
            self.kernel.device_sectors(path))
        self.engine = dm_engine.DmEngine(self.conf,
                                         state_path=self.state_path,
                                         devices=self.devices)
        self.connector = FakeConnector(self.kernel)
        self.factory_calls = []
        self.att = self.new_attachments()
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def new_attachments(self):
        def factory(protocol):
            self.factory_calls.append(protocol)
            return self.connector
        return brick.OriginAttachments(self.state_path,
                                       connector_factory=factory,
                                       identity=self.devices.identity)

    def record(self):
        with open(self.att.path) as f:
            return json.load(f)['origins']


class TestAttachments(BrickEngineTestCase):

    def test_add_records_and_caches(self):
        image = brick.add_image(self.engine, self.att, 'img', 'ISCSI',
                                iscsi_props())
        self.assertEqual('/dev/sda', image.location)
        self.assertEqual(['ISCSI'], self.factory_calls)
        rec = self.record()['img']
        self.assertEqual(PASSWORD, rec['properties']['auth_password'])
        self.assertEqual('/dev/sda', rec['path'])
        self.assertEqual('%d:wwn-vol1' % ORIGIN_SECTORS, rec['identity'])
        self.assertEqual(0o600, stat.S_IMODE(os.stat(self.att.path).st_mode))
        self.assertEqual('***',
                         self.att.list()['img']['properties'][
                             'auth_password'])
        with open(os.path.join(self.state_path, 'state.json')) as f:
            self.assertNotIn(PASSWORD, f.read())
        self.assertNotIn(PASSWORD, self.logs.output)
        self.assertIn('Attaching ISCSI origin', self.logs.output)

    def test_wrong_password_leaves_nothing(self):
        e = self.assertRaises(brick.OriginAttachFailed, brick.add_image,
                              self.engine, self.att, 'img', 'ISCSI',
                              iscsi_props(auth_password='WrongPass1'))
        self.assertIn('-v *** Exit code: 24', e.msg)
        self.assertNotIn('WrongPass1', e.msg)
        self.assertNotIn('WrongPass1', self.logs.output)
        self.assertEqual({}, self.att.list())
        self.assertEqual([], self.engine.list_images())
        self.assertFalse(self.connector.attached)

    def test_engine_failure_detaches(self):
        self.conf.set_override('cache_device', '/dev/missing',
                               'fastboot_dm')
        engine = dm_engine.DmEngine(self.conf, state_path=self.state_path,
                                    devices=self.devices)
        self.assertRaises(exception.FastbootException, brick.add_image,
                          engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.assertEqual({}, self.att.list())
        self.assertEqual(['connect', 'disconnect'],
                         [c[0] for c in self.connector.calls])

    def test_add_again_is_idempotent_other_volume_refused(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.assertEqual(['img'], list(self.att.list()))
        e = self.assertRaises(exception.ImageConflict, brick.add_image,
                              self.engine, self.att, 'img', 'ISCSI',
                              iscsi_props(target_lun=2,
                                          auth_password='Other1'))
        self.assertNotIn('Other1', e.msg)
        self.assertNotIn(PASSWORD, e.msg)
        # The recorded attachment is untouched.
        self.assertIn('iqn.2010-10.org.openstack:volume-1',
                      self.connector.attached)

    def test_remove_detaches_after_the_cache(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        brick.remove_image(self.engine, self.att, 'img')
        self.assertEqual({}, self.att.list())
        self.assertFalse(self.connector.attached)
        self.assertEqual([], self.engine.list_images())
        self.assertRaises(exception.ImageNotFound, brick.remove_image,
                          self.engine, self.att, 'img')

    def test_remove_refused_while_in_use_keeps_attachment(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.engine.create('vm1', 'img', '/dev/sda')
        self.assertRaises(exception.ImageInUse, brick.remove_image,
                          self.engine, self.att, 'img')
        self.assertIn('img', self.att.list())
        self.assertTrue(self.connector.attached)

    def test_remove_of_interrupted_add_detaches(self):
        self.att.attach('img', 'ISCSI', iscsi_props())
        brick.remove_image(self.engine, self.att, 'img')
        self.assertEqual({}, self.att.list())
        self.assertFalse(self.connector.attached)

    def test_detach_failure_keeps_record_masked(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())

        def fail(props, info, force=False, ignore_errors=False):
            raise RuntimeError('logout failed for password %s' % PASSWORD)
        self.connector.disconnect_volume = fail
        e = self.assertRaises(brick.OriginDetachFailed, self.att.detach,
                              'img')
        self.assertNotIn(PASSWORD, e.msg)
        self.assertIn('img', self.att.list())


class TestRestore(BrickEngineTestCase):

    def reboot(self):
        self.engine.deactivate()
        self.connector.lose_all()
        # The next attach gets another name, as /dev/sdX after a reboot.
        next(self.connector.names)
        self.engine = dm_engine.DmEngine(self.conf,
                                         state_path=self.state_path,
                                         devices=self.devices)
        self.att = self.new_attachments()

    def test_reattach_at_a_new_path_then_rebuild(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.engine.create('vm1', 'img', '/dev/sda')
        self.reboot()
        self.assertNotIn('/dev/sda', self.kernel.host_devices)
        report, restored, failed = brick.reconcile(self.engine, self.att)
        self.assertEqual((['img'], []), (restored, failed))
        self.assertEqual(['img'], report.restored_images)
        self.assertEqual(['vm1'], report.restored_vms)
        entry = self.engine.state.read()['images']['img']
        self.assertEqual('/dev/sdc', entry['location'])
        self.assertEqual('/dev/sdc', entry['segments'][0][0])
        self.assertEqual('/dev/sdc', self.att.get('img')['path'])
        origin = self.kernel.tables[self.engine.dm_name('origin', 'img')]
        self.assertIn('/dev/sdc', str(origin))
        # Again, with everything live: nothing changes.
        report, restored, failed = brick.reconcile(self.engine, self.att)
        self.assertTrue(report.clean)

    def test_other_volume_at_the_target_refused(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.reboot()
        self.devices.identity = lambda path: '%d:wwn-other' % (
            self.kernel.device_sectors(path))
        self.att = self.new_attachments()
        report, restored, failed = brick.reconcile(self.engine, self.att)
        self.assertEqual(([], ['img']), (restored, failed))
        self.assertEqual(['img'], report.failed_images)
        self.assertFalse(self.connector.attached)
        self.assertIn('is not the recorded one', self.logs.output)

    def test_unreachable_origin_fails_that_image_only(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.reboot()
        self.connector.good = 'changed-on-the-array'
        report, restored, failed = brick.reconcile(self.engine, self.att)
        self.assertEqual(([], ['img']), (restored, failed))
        self.assertEqual(['img'], report.failed_images)
        self.assertIn('img', self.att.list())
        self.assertNotIn(PASSWORD, self.logs.output)

    def test_orphan_attachment_detached(self):
        self.att.attach('img', 'ISCSI', iscsi_props())
        report, restored, failed = brick.reconcile(self.engine, self.att)
        self.assertEqual(([], []), (restored, failed))
        self.assertEqual({}, self.att.list())
        self.assertFalse(self.connector.attached)

    def test_relocate_refused_while_live(self):
        brick.add_image(self.engine, self.att, 'img', 'ISCSI', iscsi_props())
        self.kernel.host_devices['/dev/sdz'] = ORIGIN_SECTORS
        self.assertRaises(exception.ImageConflict,
                          self.engine.relocate_origin, 'img', '/dev/sdz')
        self.engine.relocate_origin('img', '/dev/sda')
        self.assertRaises(exception.ImageNotFound,
                          self.engine.relocate_origin, 'nope', '/dev/sdz')


class TestCli(BrickEngineTestCase):

    def run_cli(self, *argv):
        app = cli.FastbootApp()
        app.engine = self.engine
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.storage.dm.brick.OriginAttachments',
            side_effect=lambda *a, **k: self.att))
        out, err = fixtures.StringStream('out'), fixtures.StringStream('err')
        out = self.useFixture(out).stream
        err = self.useFixture(err).stream
        app.stdout, app.stderr = out, err
        rc = app.run(['--state-path', self.state_path] + list(argv))
        out.seek(0)
        err.seek(0)
        return rc, out.read(), err.read()

    def write_info(self, info):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'ci.json')
        with open(path, 'w') as f:
            json.dump(info, f)
        return path

    def test_add_remove(self):
        path = self.write_info({'driver_volume_type': 'iscsi',
                                'data': iscsi_props()})
        rc, out, err = self.run_cli('image', 'add', 'img',
                                    '--connection-info', path)
        self.assertEqual(0, rc, err)
        self.assertIn('/dev/sda', out)
        rc, out, err = self.run_cli('image', 'remove', 'img')
        self.assertEqual(0, rc, err)
        self.assertFalse(self.connector.attached)

    def test_unknown_protocol_nothing_runs(self):
        path = self.write_info({'driver_volume_type': 'fibre_channel',
                                'data': {}})
        rc, out, err = self.run_cli('image', 'add', 'img',
                                    '--connection-info', path)
        self.assertNotEqual(0, rc)
        self.assertIn("'fibre_channel' is not supported", err)
        self.assertEqual([], self.factory_calls)

    def test_connection_info_dev_zero_is_refused_at_once(self):
        # It used to read /dev/zero forever.
        rc, out, err = self.run_cli('image', 'add', 'img',
                                    '--connection-info', '/dev/zero')
        self.assertEqual(1, rc)
        self.assertIn('/dev/zero is not a regular file', err)
        self.assertEqual([], self.factory_calls)

    def test_connection_info_too_large_is_refused(self):
        path = self.write_info({'driver_volume_type': 'iscsi',
                                'data': iscsi_props(),
                                'pad': 'x' * brick.MAX_CONNECTION_INFO_BYTES})
        rc, out, err = self.run_cli('image', 'add', 'img',
                                    '--connection-info', path)
        self.assertEqual(1, rc)
        self.assertIn('is larger than %d bytes' %
                      brick.MAX_CONNECTION_INFO_BYTES, err)
        self.assertEqual([], self.factory_calls)

    def test_location_xor_connection_info(self):
        rc, out, err = self.run_cli('image', 'add', 'img')
        self.assertNotEqual(0, rc)
        self.assertIn('exactly one of LOCATION and --connection-info', err)
