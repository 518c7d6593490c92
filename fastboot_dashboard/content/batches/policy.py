"""The policy rules the panel checks (scope ``fastboot`` in Horizon's
POLICY_FILES); the same names as the coordinator's, so one policy file
serves both.
"""

from openstack_auth import policy

SCOPE = 'fastboot'
READ = ((SCOPE, 'coordinator:batches:read'),)
CREATE = ((SCOPE, 'coordinator:batches:create'),)
DELETE = ((SCOPE, 'coordinator:batches:delete'),)


def check(rules, request):
    return policy.check(rules, request)
