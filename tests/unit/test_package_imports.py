"""The installed package never imports test-only requirements.

Benchmarks and harnesses that need nova's functional test tree,
``fixtures`` or ``testtools`` live outside the package (``gate/``). Every
module of fastboot_nova (and the nova.virt.fastboot shim) is imported in
a fresh interpreter, since the test runner itself has fixtures and
testtools loaded, and the modules each one pulled in are checked.
"""

import json
import subprocess
import sys

from oslotest import base

#: Module name prefixes of test-only requirements.
TEST_ONLY = ('nova.tests', 'fixtures', 'testtools')

#: Modules that cannot be imported on their own, and why.
NOT_IMPORTABLE = {
    # Alembic's env.py runs only inside an alembic command
    # (alembic.context.config exists only there).
    'fastboot_nova.coordinator.db.migrations.env',
}

CHECK = r'''
import importlib, json, pkgutil, sys
import fastboot_nova
skip, prefixes = set(json.loads(sys.argv[1])), tuple(json.loads(sys.argv[2]))
names = ['nova.virt.fastboot.driver'] + [
    m.name for m in pkgutil.walk_packages(fastboot_nova.__path__,
                                          'fastboot_nova.')]
found, failed = {}, {}
for name in names:
    if name in skip:
        continue
    before = set(sys.modules)
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = repr(e)
    hits = sorted(m for m in set(sys.modules) - before
                  if m in prefixes or m.startswith(
                      tuple(p + '.' for p in prefixes)))
    if hits:
        found[name] = hits[:5]
print(json.dumps({'modules': len(names), 'test_only': found,
                  'failed': failed}))
'''


def check_imports():
    out = subprocess.run(
        [sys.executable, '-c', CHECK, json.dumps(sorted(NOT_IMPORTABLE)),
         json.dumps(TEST_ONLY)],
        capture_output=True, text=True, check=True, timeout=300).stdout
    return json.loads(out.splitlines()[-1])


class TestPackageImports(base.BaseTestCase):

    def test_no_test_only_requirement(self):
        result = check_imports()
        self.assertEqual({}, result['failed'])
        self.assertEqual({}, result['test_only'])
        # The walk found the package (a wrong path would find nothing).
        self.assertGreater(result['modules'], 50)

    def test_check_sees_a_test_only_import(self):
        # The same check over a module that imports fixtures finds it.
        code = CHECK.replace("'nova.virt.fastboot.driver'",
                             "'fixtures._fixtures.mockpatch'")
        out = subprocess.run(
            [sys.executable, '-c', code, '[]', json.dumps(TEST_ONLY)],
            capture_output=True, text=True, check=True,
            timeout=300).stdout
        found = json.loads(out.splitlines()[-1])['test_only']
        self.assertIn('fixtures._fixtures.mockpatch', found)
