"""Tests of the nova-api paste filter that validates fastboot requests."""

import copy
import json

import fixtures
from oslotest import base
import webob
import webob.dec

from fastboot_nova.api import validation

VOLUME = '6e8a6c4c-3b53-4f6e-9a0b-0d5d1e0c9f11'
OTHER = 'a1f3c1b2-7c55-4a8f-8e0c-4c7a8a2b1e22'
PROJECT = '6f70656e737461636b20342065766572'
TOKEN = 'gAAAAABsecret-token-value'


def fastboot_body(**server):
    body = {
        'server': {
            'name': 'fb', 'flavorRef': '1', 'imageRef': '',
            'networks': 'none',
            'block_device_mapping_v2': [{
                'boot_index': 0, 'uuid': VOLUME,
                'source_type': 'volume', 'destination_type': 'volume'}],
        },
        'os:scheduler_hints': {'fastboot': VOLUME},
    }
    body['server'].update(server)
    return body


class NextApp:
    """The next WSGI app: records what it got and answers 202."""

    def __init__(self):
        self.calls = []

    @webob.dec.wsgify
    def __call__(self, req):
        self.calls.append((req.method, req.path, req.body))
        return webob.Response(status=202, body=b'next')


class TestValidationMiddleware(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.next = NextApp()
        self.app = validation.filter_factory({})(self.next)
        self.log = self.useFixture(fixtures.FakeLogger(
            name='fastboot_nova.api.validation', level='DEBUG'))

    def request(self, body, path='/v2.1/servers', method='POST', raw=None):
        data = raw if raw is not None else json.dumps(body).encode()
        req = webob.Request.blank(
            path, method=method, body=data,
            headers={'Content-Type': 'application/json',
                     'X-Auth-Token': TOKEN})
        return data, req.get_response(self.app)

    def assertPassed(self, body, **kwargs):
        data, resp = self.request(body, **kwargs)
        self.assertEqual(202, resp.status_int)
        self.assertEqual(b'next', resp.body)
        # The next app read the very same body.
        self.assertEqual(data, self.next.calls[-1][2])
        return resp

    def assertRefused(self, body, message, **kwargs):
        calls = len(self.next.calls)
        _, resp = self.request(body, **kwargs)
        self.assertEqual(400, resp.status_int)
        self.assertEqual('application/json', resp.content_type)
        fault = resp.json_body
        self.assertEqual(['badRequest'], list(fault))
        self.assertEqual(400, fault['badRequest']['code'])
        self.assertIn(message, fault['badRequest']['message'])
        self.assertEqual(calls, len(self.next.calls))
        self.assertNotIn(TOKEN, self.log.output)
        return fault['badRequest']['message']

    # -- requests that pass -------------------------------------------

    def test_good_request_passes(self):
        self.assertPassed(fastboot_body())
        self.assertIn('Fastboot request', self.log.output)

    def test_good_request_paths(self):
        for path in ('/v2.1/servers', '/v2/servers', '/v2.1/servers/',
                     '/v2.1/%s/servers' % PROJECT,
                     '/v2/%s/servers' % PROJECT,
                     '/compute/v2.1/servers'):
            self.assertPassed(fastboot_body(), path=path)
            self.assertRefused(fastboot_body(max_count=2), 'max_count',
                               path=path)

    def test_script_name_of_urlmap(self):
        # Behind nova's urlmap, /v2.1 is SCRIPT_NAME.
        req = webob.Request.blank(
            '/%s/servers' % PROJECT, method='POST',
            body=json.dumps(fastboot_body(min_count=3)).encode(),
            headers={'Content-Type': 'application/json'})
        req.script_name = '/v2.1'
        self.assertEqual(400, req.get_response(self.app).status_int)

    def test_good_variants(self):
        body = fastboot_body(min_count=1, max_count='1')
        root = body['server']['block_device_mapping_v2'][0]
        root.update(boot_index='0', delete_on_termination='false',
                    uuid=VOLUME.upper())
        body['server']['block_device_mapping_v2'].append({
            'boot_index': 1, 'source_type': 'blank',
            'destination_type': 'local', 'volume_size': 1,
            'delete_on_termination': True})
        self.assertPassed(body)

    def test_legacy_hint_key(self):
        body = fastboot_body()
        body['OS-SCH-HNT:scheduler_hints'] = body.pop('os:scheduler_hints')
        self.assertPassed(body)
        body['OS-SCH-HNT:scheduler_hints']['fastboot'] = 'yes'
        self.assertRefused(body, 'must be the UUID of the root volume')

    def test_max_count_option(self):
        self.app = validation.filter_factory({}, max_count='10')(self.next)
        self.assertPassed(fastboot_body(min_count=10, max_count=10))
        self.assertRefused(fastboot_body(max_count=11),
                           'max_count of a fastboot request must be an '
                           'integer from 1 to 10, not 11.')

    def test_bad_max_count_option(self):
        self.assertRaises(ValueError,
                          validation.filter_factory({}, max_count='0'),
                          self.next)

    # -- requests left to nova ----------------------------------------

    def test_non_fastboot_untouched(self):
        body = fastboot_body(min_count=5, max_count=2)
        del body['os:scheduler_hints']
        self.assertPassed(body)
        body['os:scheduler_hints'] = {'group': OTHER}
        self.assertPassed(body)
        self.assertEqual('', self.log.output)

    def test_other_methods_and_paths_untouched(self):
        bad = fastboot_body(max_count=9)
        self.assertPassed(bad, method='PUT')
        self.assertPassed(None, method='GET', raw=b'')
        for path in ('/v2.1/servers/%s/action' % VOLUME,
                     '/v2.1/servers/detail', '/v2.1/os-volumes',
                     '/v2.1/%s/os-volumes_boot' % PROJECT, '/servers'):
            self.assertPassed(bad, path=path)

    def test_not_json_untouched(self):
        for raw in (b'{not json', b'[]', b'"server"', b'{"server": 1}',
                    b'\xff\xfe', b'[' * 100000):
            self.assertPassed(None, raw=raw)

    # -- refused fastboot requests ------------------------------------

    def test_bad_hint(self):
        for hint in ('true', True, {'volume_id': VOLUME}, [VOLUME],
                     VOLUME + 'x', ''):
            body = fastboot_body()
            body['os:scheduler_hints']['fastboot'] = hint
            self.assertRefused(body, 'The fastboot scheduler hint must be '
                               'the UUID of the root volume')

    def test_trailing_newline_is_refused(self):
        # Full-match patterns: ``$`` would let "<uuid>\n" through.
        for hint in (VOLUME + '\n', '\n' + VOLUME, VOLUME + '\r\n'):
            body = fastboot_body()
            body['os:scheduler_hints']['fastboot'] = hint
            self.assertRefused(body, 'The fastboot scheduler hint must be '
                               'the UUID of the root volume')
        body = fastboot_body()
        body['server']['block_device_mapping_v2'][0]['uuid'] = VOLUME + '\n'
        self.assertRefused(body, 'uuid')
        self.assertRefused(fastboot_body(max_count='1\n'), 'max_count')

    def test_path_with_a_newline_is_still_checked(self):
        self.assertRefused(fastboot_body(max_count=2), 'max_count',
                           path='/v2.1/servers%0A')

    def test_hint_twice(self):
        body = fastboot_body()
        body['OS-SCH-HNT:scheduler_hints'] = {'fastboot': VOLUME}
        self.assertRefused(body, 'Give the fastboot scheduler hint once')

    def test_counts(self):
        for key in ('min_count', 'max_count'):
            for value in (0, 2, -1, '2', 'x', '', 1.5, None, True):
                self.assertRefused(
                    fastboot_body(**{key: value}),
                    '%s of a fastboot request must be an integer from 1 '
                    'to 1, not %r.' % (key, value))

    def test_min_count_above_max_count(self):
        self.app = validation.filter_factory({}, max_count=5)(self.next)
        self.assertRefused(fastboot_body(min_count=3, max_count=2),
                           'min_count (3) of a fastboot request must not '
                           'exceed its max_count (2).')

    def test_no_root_volume(self):
        message = 'block_device_mapping_v2 must have one mapping with ' \
                  'boot_index 0'
        for bdms in (None, [], {}, 7, [{'boot_index': 1, 'uuid': VOLUME}],
                     [{'boot_index': False, 'uuid': VOLUME}],
                     [{'boot_index': 0, 'uuid': VOLUME}] * 2):
            body = fastboot_body(block_device_mapping_v2=bdms)
            self.assertRefused(body, message)
        body = fastboot_body()
        legacy = body['server'].pop('block_device_mapping_v2')
        body['server']['block_device_mapping'] = legacy
        self.assertRefused(body, message)

    def test_root_not_volume(self):
        cases = [('source_type', 'image'), ('source_type', 'snapshot'),
                 ('destination_type', 'local'), ('uuid', 'not-a-uuid'),
                 ('source_type', None)]
        for field, value in cases:
            body = fastboot_body()
            root = body['server']['block_device_mapping_v2'][0]
            if value is None:
                del root[field]
            else:
                root[field] = value
            self.assertRefused(
                body, 'must have source_type volume, destination_type '
                'volume and the volume uuid: %s is %r.' % (field, value))

    def test_delete_on_termination(self):
        for value in (True, 'true', 'True', '1', 'yes', 'on', 'maybe'):
            body = fastboot_body()
            body['server']['block_device_mapping_v2'][0][
                'delete_on_termination'] = value
            self.assertRefused(body, 'must never be deleted with a server: '
                               'delete_on_termination must be false.')

    def test_hint_names_other_volume(self):
        body = fastboot_body()
        body['os:scheduler_hints']['fastboot'] = OTHER
        self.assertRefused(body, 'The fastboot scheduler hint (%s) must '
                           'name the root volume (%s).' % (OTHER, VOLUME))

    def test_refusal_logged_without_token(self):
        message = self.assertRefused(fastboot_body(max_count=2), 'max_count')
        self.assertIn('Refused fastboot request', self.log.output)
        self.assertIn(message, self.log.output)


class TestValidate(base.BaseTestCase):

    def test_returns_volume(self):
        self.assertEqual(VOLUME, validation.validate(fastboot_body()))

    def test_not_fastboot(self):
        body = fastboot_body()
        del body['os:scheduler_hints']
        self.assertIsNone(validation.validate(body))
        self.assertIsNone(validation.validate({'server': 1}))
        self.assertIsNone(validation.validate([]))
        body['os:scheduler_hints'] = 'fastboot'
        self.assertIsNone(validation.validate(body))

    def test_body_not_changed(self):
        body = fastboot_body()
        before = copy.deepcopy(body)
        validation.validate(body)
        self.assertEqual(before, body)
