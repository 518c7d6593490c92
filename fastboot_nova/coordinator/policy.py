"""Authorization: what the caller may do.

In keystone mode the rules below (defaults in code, overridable through
the oslo.policy file) decide. "Host-scoped" calls act for one host
(heartbeat, deregister, report or remove its caches, ask its parents):
with keystone the caller must be the user that registered the host (or an
admin); with shared_secret it must present that host's own token.
"""

from oslo_policy import policy

from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator import exception

HOSTS_CREATE = 'coordinator:hosts:create'
HOSTS_LIST = 'coordinator:hosts:list'
HOSTS_SELF = 'coordinator:hosts:self'
VOLUMES_READ = 'coordinator:volumes:read'
HOSTS_RESET_TOKEN = 'coordinator:hosts:reset_token'

RULES = [
    policy.RuleDefault('coordinator:admin', 'role:admin',
                       description='Administrators.'),
    policy.RuleDefault('coordinator:service',
                       'role:admin or role:service',
                       description='Compute hosts run as service users.'),
    policy.RuleDefault('coordinator:reader',
                       'role:admin or role:reader or role:service',
                       description='Read-only views.'),
    policy.DocumentedRuleDefault(
        HOSTS_CREATE, 'rule:coordinator:service',
        'Register a host.', [{'path': '/v1/hosts', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        HOSTS_LIST, 'rule:coordinator:reader',
        'List hosts and volumes.',
        [{'path': '/v1/hosts', 'method': 'GET'},
         {'path': '/v1/hosts/{host}', 'method': 'GET'},
         {'path': '/v1/volumes', 'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        HOSTS_SELF,
        'rule:coordinator:admin or '
        '(rule:coordinator:service and user_id:%(owner)s)',
        'Act as one host: only the user that registered it.',
        [{'path': '/v1/hosts/{host}/heartbeat', 'method': 'PUT'},
         {'path': '/v1/hosts/{host}', 'method': 'DELETE'},
         {'path': '/v1/hosts/{host}/caches/{volume}', 'method': 'PUT'},
         {'path': '/v1/hosts/{host}/caches/{volume}', 'method': 'DELETE'},
         {'path': '/v1/volumes/{volume}/parents?host={host}',
          'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        HOSTS_RESET_TOKEN, 'rule:coordinator:admin',
        'Re-issue a host\'s token, or give the host to another user.',
        [{'path': '/v1/hosts/{host}/token', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        VOLUMES_READ, 'rule:coordinator:reader',
        'Show the tree of a volume.',
        [{'path': '/v1/volumes/{volume}/tree', 'method': 'GET'}]),
]

# Boot batches (api/batches.py): project-scoped, rules in batch_policy.
from fastboot_nova.coordinator import batch_policy  # noqa: E402
RULES += batch_policy.RULES


def list_rules():
    """For the ``oslo.policy.policies`` entry point."""
    return RULES


class Authorizer:

    def __init__(self, conf):
        self.strategy = conf.coordinator.auth_strategy
        self._enforcer = None
        if self.strategy == 'keystone':
            self._enforcer = policy.Enforcer(conf)
            self._enforcer.register_defaults(RULES)

    def authorize(self, ctx, action, target=None):
        """Raise Forbidden unless ``ctx`` may do ``action``."""
        if self._enforcer is None:
            return  # shared_secret: holding the secret is enough
        self._enforcer.authorize(
            action, target or {}, ctx.to_policy_values(),
            do_raise=True,
            exc=exception.Forbidden,
            reason='Policy does not allow %s.' % action)

    def owns(self, ctx, host):
        """True if ``ctx`` proves it is ``host`` (a re-registration).

        keystone: the user that registered it; shared_secret: the host's
        own token.
        """
        if self._enforcer is not None:
            return bool(host.owner) and host.owner == ctx.user_id
        return auth.token_matches(ctx.host_token, host.token_hash)

    def authorize_reset(self, ctx):
        """Only an operator re-issues a token.

        With shared_secret every caller holds the same secret, and any of
        them could take a host's name: the re-issue is
        ``fastboot-coordinator-manage host reset-token`` on the
        coordinator's machine.
        """
        if self._enforcer is None:
            raise exception.Forbidden(
                reason='With auth_strategy shared_secret, re-issue a host '
                       'token with "fastboot-coordinator-manage host '
                       'reset-token HOST".')
        self.authorize(ctx, HOSTS_RESET_TOKEN)

    def authorize_host(self, ctx, host):
        """Raise unless ``ctx`` acts for ``host`` (a Host row)."""
        if self._enforcer is not None:
            return self.authorize(ctx, HOSTS_SELF,
                                  {'owner': host.owner or ''})
        if not ctx.host_token:
            raise exception.NotAuthenticated(
                reason='Missing %s header for host %s.' % (
                    auth.HOST_TOKEN_HEADER, host.name))
        if not auth.token_matches(ctx.host_token, host.token_hash):
            raise exception.Forbidden(
                reason='The host token does not belong to host %s.'
                % host.name)
