"""Authentication: who is calling.

Two strategies (``[coordinator] auth_strategy``):

* ``keystone``: keystonemiddleware's auth_token validates the token and
  sets the X-User-Id/X-Roles headers, :class:`KeystoneContext` turns them
  into the request context; oslo.policy decides the rest.
* ``shared_secret``: :class:`SharedSecret` requires ``X-Fastboot-Secret``
  equal to ``[coordinator] shared_secret`` on every request. Each host also
  holds its own token, issued once at registration and stored hashed; the
  host-scoped calls check it (see :mod:`.policy`).

Secrets and tokens are compared in constant time and never logged.
"""

import hashlib
import hmac
import re
import secrets

from oslo_middleware import base as middleware_base
import webob.dec

from fastboot_nova.coordinator import context
from fastboot_nova.coordinator import exception

SECRET_HEADER = 'X-Fastboot-Secret'
HOST_TOKEN_HEADER = 'X-Fastboot-Host-Token'
CONTEXT_KEY = 'fastboot.context'
KEYSTONE_GROUP = 'keystone_authtoken'

# Paths that answer without authentication: version discovery only.
PUBLIC_PATHS = frozenset(['', '/'])


_TOKEN_RE = re.compile(r'[A-Za-z0-9_-]{43,128}')


def new_host_token():
    return secrets.token_urlsafe(32)


def is_token(token):
    """True for a token a host may propose: 256 bits or more, urlsafe.

    A host makes its token before it registers and keeps it first, so a
    registration whose reply is lost can be repeated with the same token.
    """
    return isinstance(token, str) and _TOKEN_RE.fullmatch(token) is not None


def hash_token(token):
    """sha256 of the token.

    The tokens are 256 random bits, not passwords: a fast hash is enough,
    a slow KDF would only slow every host-scoped call.
    """
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def reissue(db, ctx, name, owner=False):
    """A new token for host ``name``; the old one stops working at once.

    ``owner`` (a keystone user id, or None) also gives the host to that
    user; False leaves the owner. Returns the token, shown once.
    """
    token = new_host_token()
    db.host_set_token(ctx, name, hash_token(token), owner=owner)
    return token


def token_matches(token, token_hash):
    if not token or not token_hash:
        return False
    return hmac.compare_digest(hash_token(token).encode(),
                               token_hash.encode())


def check_configuration(conf):
    """Refuse to start with an authentication that cannot work.

    shared_secret mode needs a secret; keystone mode (the default) needs
    ``[keystone_authtoken]`` to find Keystone, else every request would
    fail with 401 (or 503) at run time: say at start what to set.
    """
    if conf.coordinator.auth_strategy == 'shared_secret':
        if not conf.coordinator.shared_secret:
            raise exception.ConfigurationError(
                reason='[coordinator] auth_strategy is shared_secret but '
                       '[coordinator] shared_secret is not set; refusing to '
                       'start without authentication')
        return
    if not _keystone_configured(conf):
        raise exception.ConfigurationError(
            reason='[coordinator] auth_strategy is keystone (the default) '
                   'but [keystone_authtoken] is not configured: set its '
                   'www_authenticate_uri, auth_type and credentials (hosts '
                   'then authenticate with the [fastboot_coordinator] '
                   'auth section), or set [coordinator] auth_strategy = '
                   'shared_secret and shared_secret (hosts then send '
                   '[fastboot] coordinator_secret)')


def register_keystone_opts(conf):
    """``[keystone_authtoken]``, as keystonemiddleware registers it."""
    from keystoneauth1 import loading as ks_loading
    from keystonemiddleware.auth_token import _opts
    conf.register_opts(_opts._OPTS, group=KEYSTONE_GROUP)
    ks_loading.register_auth_conf_options(conf, KEYSTONE_GROUP)


def _keystone_configured(conf):
    register_keystone_opts(conf)
    group = conf[KEYSTONE_GROUP]
    return bool(group.www_authenticate_uri or group.auth_type)


def _request_id(environ):
    return environ.get('openstack.request_id')


class SharedSecret(middleware_base.Middleware):
    """Every request must carry the shared secret."""

    def __init__(self, application, secret):
        super().__init__(application)
        self._secret = secret.encode('utf-8')

    @webob.dec.wsgify
    def __call__(self, req):
        if req.path_info in PUBLIC_PATHS:
            return self.application
        given = req.headers.get(SECRET_HEADER)
        if given is None:
            raise exception.NotAuthenticated(
                reason='Missing %s header.' % SECRET_HEADER)
        if not hmac.compare_digest(given.encode('utf-8', 'replace'),
                                   self._secret):
            raise exception.NotAuthenticated(
                reason='Invalid %s header.' % SECRET_HEADER)
        req.environ[CONTEXT_KEY] = context.RequestContext(
            request_id=_request_id(req.environ),
            roles=['admin'],
            host_token=req.headers.get(HOST_TOKEN_HEADER))
        return self.application


class KeystoneContext(middleware_base.Middleware):
    """Request context from the headers keystonemiddleware set."""

    @webob.dec.wsgify
    def __call__(self, req):
        if req.path_info in PUBLIC_PATHS:
            return self.application
        if req.environ.get('HTTP_X_IDENTITY_STATUS') != 'Confirmed':
            raise exception.NotAuthenticated(
                reason='Authentication required.')
        req.environ[CONTEXT_KEY] = context.RequestContext.from_environ(
            req.environ, request_id=_request_id(req.environ))
        return self.application
