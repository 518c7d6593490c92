# Sphinx configuration of the fastboot documentation (``tox -e docs``).
#
# The reference pages are generated from the code, so they cannot drift
# from it: options (oslo_config.sphinxext, namespace ``fastboot``), the
# sample configuration (oslo_config.sphinxconfiggen, the same generator
# file as ``tox -e genconfig``), policies (oslo_policy.sphinxext and
# sphinxpolicygen, namespace ``fastboot-coordinator``), the ``fastboot``
# and ``openstack fastboot`` commands (cliff.sphinxext) and
# ``fastboot-tune`` (sphinx-argparse on its argparse parser).

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, '..', '..'))

project = 'fastboot'
copyright = '2026, The fastboot developers'
author = 'The fastboot developers'

extensions = [
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
    'cliff.sphinxext',
    'sphinxarg.ext',
    'reno.sphinxext',
]

# oslo_config.sphinxconfiggen: writes _static/fastboot.conf.sample.
config_generator_config_file = os.path.join(
    _ROOT, 'etc', 'fastboot', 'fastboot-config-generator.conf')
sample_config_basename = '_static/fastboot'

# oslo_policy.sphinxpolicygen: writes _static/fastboot-coordinator.policy.yaml.sample.
policy_generator_config_file = os.path.join(
    _HERE, 'policy-generator.conf')
sample_policy_basename = '_static/fastboot-coordinator'

# reno.sphinxext reads the notes from the git history of the checkout.
reno_config = {}

# openstackdocstheme
openstackdocs_repo_name = 'openstack/fastboot'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'fastboot'
openstackdocs_bug_tag = 'doc'

templates_path = []
exclude_patterns = []
master_doc = 'index'
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = ['_static']
html_title = 'fastboot'

# Files written into _static by the generators above are build products.
html_extra_path = []
