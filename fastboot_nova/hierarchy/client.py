"""A client of the coordinator's ``/v1`` REST API.

Only what a host needs: register, heartbeat, report and drop caches, ask
for parents. The host token the coordinator issues at registration is a
secret: it is never logged.

The client may be given the URLs of several coordinator replicas. They
share one database (and tooz backend), so any of them answers alike and
the host token one issued is valid on all: the client sticks to the
replica that last answered and, when it refuses the connection, times out
or answers 5xx, tries the next (each call tries each replica at most
once). A 4xx is an answer, not a failure: it is not retried elsewhere.
That keeps a host registered and heartbeating while one replica is down,
without a load balancer in front of them.
"""

import dataclasses
import logging
import secrets
import urllib.parse

import requests

try:
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import session as ks_session
except ImportError:
    # Only a keystone session needs it (host.keystone_session builds one
    # only when an auth section is set): a host with the shared secret,
    # such as the kernel test guest, runs on requests alone.
    ks_exc = ks_session = None

from fastboot_nova import exception
from fastboot_nova.storage import names

LOG = logging.getLogger(__name__)

SECRET_HEADER = 'X-Fastboot-Secret'
HOST_TOKEN_HEADER = 'X-Fastboot-Host-Token'


class CoordinatorError(exception.FastbootException):
    message = 'Coordinator %(url)s: %(reason)s'


class CoordinatorUnavailable(CoordinatorError):
    """The coordinator did not answer: the host goes on from the origin."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One place to read a volume's missing blocks from."""

    #: Parent host name, None for the origin.
    host: str
    export_url: str = None

    @property
    def is_origin(self):
        return self.host is None


@dataclasses.dataclass(frozen=True)
class Parents:
    """A host's primary source for a volume and its alternates, in order."""

    primary: Source
    alternates: tuple = ()
    depth: int = None

    def parent_urls(self):
        """Export URLs of the parent hosts, preferred first.

        They end where the origin comes: the engine reads from it last.
        """
        urls = []
        for source in (self.primary,) + self.alternates:
            if source.is_origin:
                # Sources after the origin are never read: the engine
                # always has the origin as its last source.
                break
            urls.append(source.export_url)
        return urls


_TRANSPORT_ERRORS = (requests.RequestException,) + (
    (ks_exc.ClientException,) if ks_exc is not None else ())


def _source(ref):
    if ref.get('origin'):
        return Source(host=None)
    return Source(host=ref['host'], export_url=ref['export_url'])


class CoordinatorClient:
    """Talks to the coordinator at ``url`` (the ``/v1`` base) as ``host``.

    :param url: one base URL, or a list of the replicas' base URLs
        (tried in order, see the module docstring).
    """

    def __init__(self, url, host, secret=None, token=None, timeout=5.0,
                 session=None):
        urls = [url] if isinstance(url, str) else list(url or ())
        if not urls:
            raise ValueError('a coordinator client needs at least one URL')
        self.urls = [u.rstrip('/') for u in urls]
        self._current = 0
        self.host = names.validate(host, 'host')
        self.secret = secret
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()

    @property
    def url(self):
        """The replica the next call goes to first."""
        return self.urls[self._current]

    def _headers(self):
        headers = {'Accept': 'application/json'}
        if self.secret:
            headers[SECRET_HEADER] = self.secret
        if self.token:
            headers[HOST_TOKEN_HEADER] = self.token
        return headers

    def _request(self, method, url, body, params):
        if ks_session is not None and isinstance(self.session,
                                                 ks_session.Session):
            # keystoneauth adds the token (and renews it); log=False: its
            # request log would show the host token header.
            return self.session.request(
                url, method, json=body, params=params, timeout=self.timeout,
                headers=self._headers(), raise_exc=False, log=False)
        return self.session.request(method, url, json=body, params=params,
                                    timeout=self.timeout,
                                    headers=self._headers())

    def _call_one(self, base, method, path, body, params, ok):
        try:
            resp = self._request(method, base + path, body, params)
        except _TRANSPORT_ERRORS as e:
            raise CoordinatorUnavailable(url=base, reason=e)
        if resp.status_code >= 500:
            raise CoordinatorUnavailable(url=base, reason=_error_text(resp))
        if resp.status_code not in ok:
            raise CoordinatorError(url=base, reason='%s %s: %s' % (
                method, path, _error_text(resp)))
        return resp.json() if resp.content else None

    def _call(self, method, path, body=None, params=None, ok=(200,)):
        failures = []
        for step in range(len(self.urls)):
            index = (self._current + step) % len(self.urls)
            try:
                result = self._call_one(self.urls[index], method, path, body,
                                        params, ok)
            except CoordinatorUnavailable as e:
                failures.append(e)
                if len(self.urls) > 1:
                    LOG.warning('Coordinator replica %s unavailable (%s %s)'
                                '%s', self.urls[index], method, path,
                                '; trying the next' if step + 1 < len(
                                    self.urls) else '')
                continue
            if index != self._current:
                LOG.info('Coordinator: now using replica %s',
                         self.urls[index])
                self._current = index
            return result
        if len(failures) == 1:
            raise failures[0]
        raise CoordinatorUnavailable(
            url=', '.join(self.urls),
            reason='no replica answered: %s' % '; '.join(
                e.msg for e in failures))

    def _host_path(self, *parts):
        return '/hosts/' + '/'.join(urllib.parse.quote(p, safe='')
                                    for p in (self.host,) + parts)

    @staticmethod
    def new_token():
        """A host token of 256 random bits, made by the host itself.

        Kept before registering and sent with the registration, so a
        registration whose reply is lost can be repeated: the coordinator
        recognises the same host by the same token.
        """
        return secrets.token_urlsafe(32)

    def register(self, address, failure_domain=None):
        """Register this host, or again with its token (idempotent).

        Keeps the host token the coordinator issues, if it issues one.
        """
        body = {'name': self.host, 'address': address}
        if failure_domain:
            body['failure_domain'] = failure_domain
        data = self._call('POST', '/hosts', body, ok=(200, 201))['host']
        if data.get('token'):
            self.token = data['token']
        LOG.info('Registered host %s with the coordinator', self.host)
        return data

    def heartbeat(self):
        self._call('PUT', self._host_path('heartbeat'), {})

    def deregister(self):
        self._call('DELETE', self._host_path(), ok=(204,))

    def report_cache(self, volume, export_url, warm=False, parent=False):
        """Report a cache this host holds.

        ``parent`` (a host name, or None for the origin) says what the cache
        reads from now, after a fail-over; left out, it is unchanged.
        """
        body = {'export_url': export_url, 'warm': warm}
        if parent is not False:
            body['parent'] = parent
        return self._call('PUT', self._host_path('caches', volume), body)

    def drop_cache(self, volume):
        self._call('DELETE', self._host_path('caches', volume), ok=(204,))

    def parents(self, volume):
        data = self._call('GET', '/volumes/%s/parents' %
                          urllib.parse.quote(volume, safe=''),
                          params={'host': self.host})
        return Parents(primary=_source(data['primary']),
                       alternates=tuple(_source(a)
                                        for a in data.get('alternates', ())),
                       depth=data.get('depth'))


def _error_text(resp):
    try:
        error = resp.json()['error']
        return '%s %s' % (error.get('code', resp.status_code),
                          error.get('message') or error.get('title'))
    except (ValueError, KeyError, TypeError, AttributeError):
        return 'HTTP %d' % resp.status_code
