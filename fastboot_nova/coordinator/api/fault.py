"""Every error becomes ``{"error": {"code", "title", "message"}}``.

Outermost but for request_id/proxy: it catches the coordinator
exceptions, webob's HTTP exceptions, oslo.db's connection errors (503) and
anything else (500, logged with its traceback, no detail to the client),
and rewrites non-JSON error responses of inner middlewares (the size
limiter's 413, keystonemiddleware's 401) in the same shape.
"""

import json
import logging

from oslo_db import exception as db_exc
import webob.dec
import webob.exc

from fastboot_nova.coordinator import exception

LOG = logging.getLogger(__name__)


def error_response(code, title, message, headers=None):
    resp = webob.Response(status=code, content_type='application/json',
                          charset=None)
    resp.body = json.dumps({'error': {'code': code, 'title': title,
                                      'message': message}}).encode('utf-8')
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _raw_path(req):
    # The undecoded path: logging must not fail on bad bytes.
    return req.environ.get('PATH_INFO', '')


def _title(status):
    return status.split(' ', 1)[1] if ' ' in status else status


class FaultWrapper:

    def __init__(self, application):
        self.application = application

    def _call(self, req):
        try:
            req.path_info  # noqa: B018 - decodes, or raises below
            return req.get_response(self.application)
        except UnicodeDecodeError:
            return error_response(400, 'Bad Request',
                                  'The URL is not valid UTF-8.')
        except exception.CoordinatorError as e:
            if e.code >= 500:
                LOG.warning('%s %s: %s', req.method, _raw_path(req), e.msg)
            headers = {}
            if isinstance(e, exception.MethodNotAllowed):
                headers['Allow'] = e.kwargs['allowed']
            return error_response(e.code, e.title, e.msg, headers)
        except webob.exc.HTTPException as e:
            return error_response(e.code, e.title, e.detail or e.title)
        except (db_exc.DBConnectionError, db_exc.DBNonExistentDatabase):
            # NonExistentDatabase: how SQLite says its file is unreachable.
            LOG.warning('%s %s: database connection failed', req.method,
                        _raw_path(req), exc_info=True)
            err = exception.DatabaseUnavailable()
            return error_response(err.code, err.title, err.msg)
        except Exception:
            LOG.exception('%s %s: unexpected error', req.method,
                          _raw_path(req))
            return error_response(500, 'Internal Server Error',
                                  'An unexpected error occurred; see the '
                                  'coordinator log.')

    @webob.dec.wsgify
    def __call__(self, req):
        resp = self._call(req)
        if resp.status_int >= 400 and resp.content_type != 'application/json':
            # An inner middleware's own error page.
            text = resp.text.strip() if resp.body else ''
            message = text.splitlines()[-1].strip() if text else ''
            if resp.status_int == 413:
                # oslo.middleware leaves its %s unfilled.
                message = ('The request body is larger than [oslo_middleware]'
                           ' max_request_body_size.')
            headers = {k: v for k, v in resp.headers.items()
                       if k.lower() == 'www-authenticate'}
            return error_response(resp.status_int, _title(resp.status),
                                  message or _title(resp.status), headers)
        return resp
