"""Request parsing and validation, JSON responses.

Every handler declares the JSON schema of its body and of its query
string with :func:`validated`; nothing reaches a handler unchecked.
"""

import functools
import json

import jsonschema
import webob

from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator import exception

# JSON schema "pattern" is searched (re.search), not matched: \A and \Z
# anchor the whole string. ``$`` would also match before a final newline,
# and "hostA\n" would be another host than "hostA".
NAME_PATTERN = r'\A[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}\Z'
NAME = {'type': 'string', 'pattern': NAME_PATTERN}
NO_QUERY = {'type': 'object', 'additionalProperties': False}

# Built once: a schema is checked when the module loads, not per request.
_VALIDATORS = {}


def _validator(schema):
    key = id(schema)
    if key not in _VALIDATORS:
        jsonschema.Draft202012Validator.check_schema(schema)
        _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return _VALIDATORS[key]


def _check(schema, instance, what):
    errors = sorted(_validator(schema).iter_errors(instance),
                    key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = '/'.join(str(p) for p in err.absolute_path) or what
        raise exception.BadRequest(
            reason='Invalid %s: %s: %s' % (what, where, err.message))


def _json_body(req):
    body = req.body  # reading may raise 413 through the size limiter
    if not body:
        return None
    if req.content_type != 'application/json':
        raise exception.UnsupportedMediaType(
            content_type=req.content_type or 'none')
    try:
        return json.loads(body.decode('utf-8'))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise exception.BadRequest(reason='Malformed JSON body: %s' % e)


def _query(req):
    query = {}
    for key, value in req.GET.items():
        if key in query:
            raise exception.BadRequest(
                reason='Query parameter %s given more than once.' % key)
        query[key] = value
    return query


def validated(body=None, query=NO_QUERY, path=None):
    """Check body, query and path parameters against JSON schemas.

    ``body=None`` forbids a body. The handler is called as
    ``handler(req, state, body=..., query=..., **path)``.
    """
    def decorator(handler):
        @functools.wraps(handler)
        def wrapper(req, state, **params):
            if path:
                for name, value in params.items():
                    _check(path, value, 'path parameter %s' % name)
            data = _json_body(req)
            if body is None:
                if data is not None:
                    raise exception.BadRequest(
                        reason='This request takes no body.')
            else:
                _check(body, data, 'body')
            q = _query(req)
            _check(query, q, 'query')
            return handler(req, state, body=data, query=q, **params)
        wrapper.body_schema = body
        wrapper.query_schema = query
        return wrapper
    return decorator


def json_response(data, status=200, headers=None):
    resp = webob.Response(status=status, content_type='application/json',
                          charset=None)
    resp.body = json.dumps(data, sort_keys=True).encode('utf-8')
    if headers:
        resp.headers.update(headers)
    return resp


def no_content():
    resp = webob.Response(status=204)
    resp.content_type = None
    return resp


def context(req):
    return req.environ[auth.CONTEXT_KEY]
