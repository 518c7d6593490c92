"""The request context: who is calling, and the database transaction."""

from oslo_context import context
from oslo_db.sqlalchemy import enginefacade


@enginefacade.transaction_context_provider
class RequestContext(context.RequestContext):
    """oslo.context plus the enginefacade session slots.

    ``host_token`` is the per-host token of shared_secret mode, or None.
    """

    def __init__(self, *args, host_token=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.host_token = host_token


def admin_context():
    """For manage commands and tests: no request behind it."""
    return RequestContext(is_admin=True, roles=['admin'])
