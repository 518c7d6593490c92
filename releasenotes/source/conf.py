# Sphinx configuration of the fastboot release notes (built by
# ``tox -e releasenotes``).

project = 'fastboot Release Notes'
copyright = '2026, The fastboot developers'
author = 'The fastboot developers'

extensions = ['reno.sphinxext']

# Versions come from git tags; there is none to show in a title here.
version = ''
release = ''

templates_path = ['_templates']
exclude_patterns = []
html_theme = 'alabaster'
html_static_path = ['_static']
