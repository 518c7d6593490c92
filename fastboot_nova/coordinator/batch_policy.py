"""Policy rules of boot batches (defaults in code).

Batches belong to a project: the handlers load them by the caller's
project, so another project's batch is 404 whatever the rules say; the
rules decide what a role may do within its project.
"""

from oslo_policy import policy

BATCHES_CREATE = 'coordinator:batches:create'
BATCHES_READ = 'coordinator:batches:read'
BATCHES_DELETE = 'coordinator:batches:delete'
BATCHES_PRIORITY = 'coordinator:batches:priority'
BATCHES_ALL_PROJECTS = 'coordinator:batches:all_projects'

RULES = [
    policy.RuleDefault('coordinator:project_member',
                       'role:admin or role:member',
                       description='Members of the project.'),
    policy.RuleDefault('coordinator:project_reader',
                       'role:admin or role:member or role:reader',
                       description='Readers of the project.'),
    policy.DocumentedRuleDefault(
        BATCHES_CREATE, 'rule:coordinator:project_member',
        'Create a boot batch.', [{'path': '/v1/batches', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        BATCHES_READ, 'rule:coordinator:project_reader',
        'List and show boot batches and their timelines.',
        [{'path': '/v1/batches', 'method': 'GET'},
         {'path': '/v1/batches/{batch}', 'method': 'GET'},
         {'path': '/v1/batches/{batch}/timeline', 'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        BATCHES_DELETE, 'rule:coordinator:project_member',
        'Delete a boot batch and its servers.',
        [{'path': '/v1/batches/{batch}', 'method': 'DELETE'}]),
    policy.DocumentedRuleDefault(
        BATCHES_PRIORITY, 'rule:coordinator:service',
        'Ask for a priority other than "user" (HA restarts, retries).',
        [{'path': '/v1/batches', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        BATCHES_ALL_PROJECTS, 'rule:coordinator:admin',
        'List the batches of every project (?all_projects=true).',
        [{'path': '/v1/batches', 'method': 'GET'}]),
]
