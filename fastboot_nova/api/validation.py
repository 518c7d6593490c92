"""Paste filter that validates fastboot server create requests in nova-api.

A fastboot request is a ``POST .../v2[.1][/{project_id}]/servers`` whose
body carries the scheduler hint ``fastboot`` (in ``os:scheduler_hints`` or
``OS-SCH-HNT:scheduler_hints``). Its value is the UUID of the shared origin
volume, a string::

    {"server": {...,
                "block_device_mapping_v2": [{
                    "boot_index": 0, "uuid": "<volume uuid>",
                    "source_type": "volume", "destination_type": "volume"}]},
     "os:scheduler_hints": {"fastboot": "<volume uuid>"}}

(``openstack server create --hint fastboot=<volume uuid> ...``). A string,
not an object: Nova stores hints as lists of strings (RequestSpec
``scheduler_hints``) and an object would fail the boot in the conductor.

The filter refuses with ``400 Bad Request`` (Nova's JSON fault body) a
fastboot request whose

* hint is not a volume UUID;
* ``min_count``/``max_count`` are not integers in ``1..max_count`` (the
  filter option, default 1: Nova itself refuses several servers from one
  ``source_type=volume`` mapping), or ``min_count > max_count``;
* root mapping (the one ``block_device_mapping_v2`` entry with
  ``boot_index`` 0) is missing, is not ``source_type=volume`` and
  ``destination_type=volume``, is not the hinted volume, or asks for
  ``delete_on_termination``: the shared origin must never be deleted with
  a server.

Everything else goes through untouched: other methods and paths, requests
without the hint, bodies that are not JSON objects (Nova answers those).
The volume itself (``fastboot_cacheable`` metadata, multiattach or
read-only) is not checked here: the compute side does it
(:meth:`fastboot_nova.virt.cacheops.CacheOps.is_cacheable`) and boots a
volume that is not cacheable the ordinary way.

Several servers in one request boot from a *fastboot image* (a Glance
image with the property ``fastboot_origin_volume``, see
:mod:`fastboot_nova.virt.imageops`) and carry no hint. The filter cannot
recognise them without a Glance call, which it does not make: Nova's
quotas and checks, and the compute host's checks of the volume, apply.

Paste options (``[filter:fastboot]`` of api-paste.ini):

``max_count``
    the largest ``min_count``/``max_count`` of a fastboot request
    (default 1).
"""

import json
import re

import jsonschema
from oslo_log import log as logging
import webob
import webob.dec

LOG = logging.getLogger(__name__)

HINT = 'fastboot'
HINT_KEYS = ('os:scheduler_hints', 'OS-SCH-HNT:scheduler_hints')
DEFAULT_MAX_COUNT = 1

#: ``[/prefix]/v2[.1][/{project_id}]/servers[/]``, SCRIPT_NAME + PATH_INFO.
#: Deliberately loose at the end (``$`` also before a final newline): a
#: request this filter takes for a create is checked, never waved through.
SERVERS_PATH = re.compile(r'^(?:/[^/]+)*?/v2(?:\.1)?(?:/[^/]+)?/servers/?$')

# JSON schema patterns are searched (re.search): \A and \Z anchor the
# whole string, where ``$`` would also match before a final newline.
UUID_PATTERN = (r'\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z')

#: The ``fastboot`` scheduler hint.
HINT_SCHEMA = {'type': 'string', 'pattern': UUID_PATTERN}

# Nova's parameter_types.boolean, false values only.
_FALSE = [False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off',
          'NO', 'No', 'no']


def count_schema(max_count):
    """``min_count``/``max_count``: integers (or digit strings, as Nova)."""
    return {
        'oneOf': [
            {'type': 'integer', 'minimum': 1, 'maximum': max_count},
            {'type': 'string', 'pattern': r'\A[0-9]+\Z'},
        ],
    }


#: The root mapping (``boot_index`` 0) of a fastboot request.
ROOT_BDM_SCHEMA = {
    'type': 'object',
    'properties': {
        'source_type': {'const': 'volume'},
        'destination_type': {'const': 'volume'},
        'uuid': {'type': 'string', 'pattern': UUID_PATTERN},
        'delete_on_termination': {'enum': _FALSE},
    },
    'required': ['source_type', 'destination_type', 'uuid'],
}


class Invalid(Exception):
    """A fastboot request Nova must not get; the message goes to the user."""


def _is_root(bdm):
    boot_index = bdm.get('boot_index')
    # bool is an int: False == 0.
    return (not isinstance(boot_index, bool) and
            boot_index in (0, '0'))


def _first_error(schema, instance):
    return jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(instance))


def _count(server, key, max_count):
    if key not in server:
        return 1
    value = server[key]
    error = _first_error(count_schema(max_count), value)
    if error is None and 1 <= int(value) <= max_count:
        return int(value)
    raise Invalid('%(key)s of a fastboot request must be an integer from 1 '
                  'to %(max)d, not %(value)r.'
                  % {'key': key, 'max': max_count, 'value': value})


def validate(body, max_count=DEFAULT_MAX_COUNT):
    """Check a parsed create body.

    :returns: the origin volume id of a fastboot request, or None when the
        body is no fastboot request.
    :raises Invalid: a fastboot request that must be refused.
    """
    if not isinstance(body, dict) or not isinstance(body.get('server'),
                                                    dict):
        return None
    hints = [body[k] for k in HINT_KEYS if isinstance(body.get(k), dict)]
    hints = [h for h in hints if HINT in h]
    if not hints:
        return None
    server = body['server']

    if len(hints) > 1:
        raise Invalid('Give the fastboot scheduler hint once, in '
                      'os:scheduler_hints.')
    volume_id = hints[0][HINT]
    if _first_error(HINT_SCHEMA, volume_id) is not None:
        raise Invalid('The fastboot scheduler hint must be the UUID of the '
                      'root volume (a string), not %r.' % (volume_id,))

    min_count = _count(server, 'min_count', max_count)
    max_count_ = _count(server, 'max_count', max_count)
    if min_count > max_count_:
        raise Invalid('min_count (%d) of a fastboot request must not exceed '
                      'its max_count (%d).' % (min_count, max_count_))

    bdms = server.get('block_device_mapping_v2')
    if not isinstance(bdms, list):
        bdms = []
    roots = [b for b in bdms if isinstance(b, dict) and _is_root(b)]
    if len(roots) != 1:
        raise Invalid('A fastboot server boots from its volume: '
                      'block_device_mapping_v2 must have one mapping with '
                      'boot_index 0, source_type volume and '
                      'destination_type volume.')
    root = roots[0]
    error = _first_error(ROOT_BDM_SCHEMA, root)
    if error is not None:
        if error.path:
            field = error.path[0]
        else:  # a required property is missing
            field = next(k for k in ROOT_BDM_SCHEMA['required']
                         if k not in root)
        if field == 'delete_on_termination':
            raise Invalid('The root volume of a fastboot server is a shared '
                          'origin and must never be deleted with a server: '
                          'delete_on_termination must be false.')
        raise Invalid('The root mapping (boot_index 0) of a fastboot server '
                      'must have source_type volume, destination_type '
                      'volume and the volume uuid: %s is %r.'
                      % (field, root.get(field)))
    if root['uuid'].lower() != volume_id.lower():
        raise Invalid('The fastboot scheduler hint (%(hint)s) must name the '
                      'root volume (%(root)s).'
                      % {'hint': volume_id, 'root': root['uuid']})
    return volume_id


def fault(message):
    """Nova's JSON fault body for a 400."""
    return webob.Response(
        status=400, content_type='application/json', charset='UTF-8',
        json_body={'badRequest': {'code': 400, 'message': message}})


class FastbootValidation:
    """WSGI middleware: refuse invalid fastboot server create requests."""

    def __init__(self, application, max_count=DEFAULT_MAX_COUNT):
        self.application = application
        self.max_count = int(max_count)
        if self.max_count < 1:
            raise ValueError('max_count must be at least 1, not %d'
                             % self.max_count)

    @staticmethod
    def is_create(req):
        return (req.method == 'POST' and
                SERVERS_PATH.match(req.script_name + req.path_info)
                is not None)

    @webob.dec.wsgify
    def __call__(self, req):
        if not self.is_create(req):
            return self.application
        try:
            # webob keeps the body seekable: the next app reads it again.
            body = json.loads(req.body)
        except (ValueError, RecursionError):
            return self.application
        try:
            volume_id = validate(body, self.max_count)
        except Invalid as e:
            # Never the headers: they carry X-Auth-Token.
            LOG.info('Refused fastboot request %(id)s: %(msg)s',
                     {'id': req.environ.get('openstack.request_id'),
                      'msg': e})
            return fault(str(e))
        if volume_id is not None:
            LOG.debug('Fastboot request %(id)s for volume %(vol)s',
                      {'id': req.environ.get('openstack.request_id'),
                       'vol': volume_id})
        return self.application


def filter_factory(global_conf, **local_conf):
    """paste.filter_factory of ``[filter:fastboot]``."""
    conf = dict(global_conf, **local_conf)
    max_count = conf.get('max_count', DEFAULT_MAX_COUNT)

    def _filter(app):
        return FastbootValidation(app, max_count=max_count)
    return _filter
