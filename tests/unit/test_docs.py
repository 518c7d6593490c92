"""The documentation names only what the code has.

The reference pages of doc/source are generated from the code where a
Sphinx extension exists (options, policies, commands); the coordinator's
API reference and the prose pages are written by hand. These tests keep
the hand-written names true: every API path and method the reference
documents is a route of the router and every route is documented, and
every ``[group] option`` and policy rule a page names exists.
"""

import os
import re

import testtools

from fastboot_nova.conf import opts as conf_opts
from fastboot_nova.coordinator.api import router
from fastboot_nova.coordinator import policy

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
API_REF = os.path.join(ROOT, 'fastboot_nova', 'coordinator', 'api-ref.rst')
DOC_SOURCE = os.path.join(ROOT, 'doc', 'source')

# ``GET /v1/hosts``, ``GET /v1/batches[?all_projects=true]``,
# ``PUT /v1/hosts/{host}/caches/{volume}``.
_ENDPOINT = re.compile(r'``(GET|POST|PUT|DELETE|PATCH|HEAD) (/[^`\[?]*)')
# Path parameters compare by position, not by name ({id}, {batch}).
_PARAM = re.compile(r'\{\w+\}')
# ``[fastboot_qemu] cache_size_limit``, also wrapped over two lines.
_OPTION = re.compile(r'``\[(\w+)\]\s+(\w+)``')
_RULE = re.compile(r'``(coordinator:[a-z_:]+)``')


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _pages():
    pages = [API_REF]
    for dirpath, _dirs, files in os.walk(DOC_SOURCE):
        pages += [os.path.join(dirpath, f) for f in files
                  if f.endswith('.rst')]
    return pages


class TestApiReference(testtools.TestCase):

    def _documented(self):
        return {(method, _PARAM.sub('{}', path.rstrip('/') or '/'))
                for method, path in _ENDPOINT.findall(_read(API_REF))}

    def _routes(self):
        return {(method, _PARAM.sub('{}', path))
                for path, methods in router.ROUTES.items()
                for method in methods}

    def test_reference_documents_endpoints(self):
        # The regular expression must find the reference's entries at
        # all, or the comparisons below would compare empty sets.
        self.assertIn(('POST', '/v1/batches'), self._documented())

    def test_every_documented_endpoint_is_routed(self):
        missing = self._documented() - self._routes()
        self.assertEqual(set(), missing,
                         'documented in api-ref.rst, not in ROUTES')

    def test_every_route_is_documented(self):
        missing = self._routes() - self._documented()
        self.assertEqual(set(), missing,
                         'in ROUTES, not documented in api-ref.rst')


class TestNamedOptionsAndRules(testtools.TestCase):

    def _options(self):
        known = {}
        for group, opts in conf_opts.list_opts():
            name = group if isinstance(group, str) else group.name
            known.setdefault(name, set()).update(o.dest for o in opts)
        return known

    def test_named_options_exist(self):
        known = self._options()
        named = set()
        for page in _pages():
            for group, option in _OPTION.findall(_read(page)):
                if group in known:
                    named.add((os.path.relpath(page, ROOT), group, option))
        self.assertGreater(len(named), 20)
        wrong = sorted(n for n in named if n[2] not in known[n[1]])
        self.assertEqual([], wrong, 'options named in the docs that '
                                    'fastboot does not define')

    def test_named_policy_rules_exist(self):
        rules = {r.name for r in policy.list_rules()}
        named = set()
        for page in _pages():
            named.update((os.path.relpath(page, ROOT), rule)
                         for rule in _RULE.findall(_read(page)))
        self.assertGreater(len(named), 3)
        wrong = sorted(n for n in named if n[1] not in rules)
        self.assertEqual([], wrong, 'policy rules named in the docs that '
                                    'the coordinator does not define')
