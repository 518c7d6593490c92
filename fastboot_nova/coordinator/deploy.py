"""Assemble the coordinator WSGI application and its middleware.

The pipeline, outermost first::

    request_id -> http_proxy_to_wsgi -> fault wrapper -> body size limit
      -> auth (auth_token + context, or shared secret) -> router
"""

import dataclasses
import logging

from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id
from oslo_middleware import sizelimit

from fastboot_nova.conf import batches as batches_conf
from fastboot_nova.conf import coordinator as coordinator_conf
from fastboot_nova.coordinator.api import batches as batches_api
from fastboot_nova.coordinator.api import fault
from fastboot_nova.coordinator.api import router
from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator import exception
from fastboot_nova.coordinator import locks
from fastboot_nova.coordinator import policy
from fastboot_nova.coordinator import service

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class State:
    """What the handlers share: one per application object."""

    conf: object
    db: db_api.Database
    coordination: locks.Coordination
    service: service.TreeService
    authorizer: policy.Authorizer
    batches: object = None  # api.batches.BatchService


def register_opts(conf):
    """Options the service reads, on ``conf``; safe to call twice."""
    if 'coordinator' not in conf:
        coordinator_conf.register_opts(conf)
    if 'batches' not in conf:
        batches_conf.register_opts(conf)
    conf.register_opts(sizelimit.OPTS, group='oslo_middleware')
    conf.set_default('max_request_body_size',
                     coordinator_conf.DEFAULT_MAX_BODY,
                     group='oslo_middleware')


def _auth_pipeline(app, conf):
    if conf.coordinator.auth_strategy == 'shared_secret':
        return auth.SharedSecret(app, conf.coordinator.shared_secret)
    from keystonemiddleware import auth_token
    app = auth.KeystoneContext(app)
    return auth_token.AuthProtocol(app, {'oslo_config_config': conf})


def check_database(db):
    """Refuse to serve a database that was never migrated to head."""
    current = migration.current(db.get_engine())
    head = migration.head()
    if current != head:
        raise exception.ConfigurationError(
            reason='database schema is at %s, not %s: run '
                   '"fastboot-coordinator-manage db sync"' % (current, head))


class Application:
    """The WSGI callable; ``state`` is there for tests and for stop()."""

    def __init__(self, wsgi_app, state):
        self._app = wsgi_app
        self.state = state

    def __call__(self, environ, start_response):
        return self._app(environ, start_response)

    def stop(self):
        self.state.coordination.stop()
        self.state.db.dispose()


def make_app(conf, middleware=None, membership=True):
    """Build the application from a parsed configuration.

    :param middleware: optional callable wrapping the router before auth,
        for tests.
    :param membership: join the tooz group of replicas.
    """
    register_opts(conf)
    auth.check_configuration(conf)
    db = db_api.Database(conf)
    check_database(db)
    coordination = locks.Coordination(conf, membership=membership)
    coordination.start()
    state = State(conf=conf, db=db, coordination=coordination,
                  service=service.TreeService(conf, db, coordination),
                  authorizer=policy.Authorizer(conf))
    state.batches = batches_api.BatchService(conf, db)
    app = router.Router(state)
    if middleware is not None:
        app = middleware(app)
    app = _auth_pipeline(app, conf)
    app = sizelimit.RequestBodySizeLimiter(app, conf)
    app = fault.FaultWrapper(app)
    app = http_proxy_to_wsgi.HTTPProxyToWSGI(app, conf)
    app = request_id.RequestId(app)
    LOG.info('fastboot-coordinator ready: auth %s, fanout %d, tooz %s',
             conf.coordinator.auth_strategy, conf.coordinator.fanout,
             coordination.url.split('://', 1)[0])
    return Application(app, state)
