"""What is not product: benchmarks and load scripts (as placement's gate/).

Not installed with fastboot (pyproject.toml packages only fastboot_nova,
fastboot_dashboard and the nova.virt.fastboot shim): run from a source
tree, e.g. ``python -m gate.bench`` or the ``bench*`` tox environments.
Modules here may use test-only requirements (nova's functional test
tree, fixtures, testtools); the product package never does
(tests/unit/test_package_imports.py).
"""
