"""The policy rules the panel checks (scope ``fastboot`` in Horizon's
POLICY_FILES); the same names as the coordinator's, so one policy file
serves both.
"""

from horizon.utils import settings as horizon_settings

SCOPE = 'fastboot'
READ = ((SCOPE, 'coordinator:batches:read'),)
CREATE = ((SCOPE, 'coordinator:batches:create'),)
DELETE = ((SCOPE, 'coordinator:batches:delete'),)


def check(rules, request):
    """Horizon's configured POLICY_CHECK_FUNCTION, as for actions and
    panels: a deployment that turned policy checks off has them off here
    too.
    """
    check_function = horizon_settings.import_setting(
        'POLICY_CHECK_FUNCTION')
    if not check_function:
        return True
    return check_function(rules, request)
