"""The order in which a ministack comes up and goes down.

Slow starters (RabbitMQ ~8 s, libvirtd, neutron's API) are started early
and waited for late, so that bring-up overlaps them with Keystone's
bootstrap and the database migrations.
"""

import json
import os
import shlex
import shutil
import subprocess
import threading
import time

from ministack import install
from ministack import layout as layout_mod
from ministack import proc
from ministack.services import ceph
from ministack.services import cinder
from ministack.services import coordinator
from ministack.services import glance
from ministack.services import keystone
from ministack.services import libvirt
from ministack.services import mariadb
from ministack.services import neutron
from ministack.services import nova
from ministack.services import placement
from ministack.services import rabbitmq
from ministack import stack as stack_mod

# Bottom-up: ``down`` stops them in reverse.
SERVICES = (mariadb, rabbitmq, libvirt, ceph, keystone, placement, glance,
            neutron, cinder, coordinator, nova)

CATALOG = (
    ('nova', 'compute', 'nova', '/v2.1'),
    ('placement', 'placement', 'placement', ''),
    ('glance', 'image', 'glance', ''),
    ('neutron', 'network', 'neutron', ''),
    ('cinder', 'volumev3', 'cinder', '/v3/%(project_id)s'),
    # The first replica; computes know both (coordinator_url list).
    ('fastboot', 'fastboot', 'coordinator', ''),
)


def all_names():
    return [n for svc in SERVICES for n in svc.NAMES]


def _step(label, started):
    print('ministack: %-28s %6.1f s' % (label, time.monotonic() - started),
          flush=True)


def _venv_python(stack, module, *args, env=None, wait=True):
    full_env = stack.venv_env()
    full_env['PYTHONPATH'] = str(layout_mod.REPO)
    full_env.update(env or {})
    name = module.rsplit('.', 1)[1]
    popen = proc.spawn(stack.layout, name,
                       [stack.layout.bin('python'), '-m', module, *args],
                       env=full_env)
    if wait:
        proc.finish(stack.layout, name, popen)
    return popen


def _catalog(stack):
    layout = stack.layout
    spec = {
        'auth_url': stack.keystone_url(), 'password': stack.password,
        'region': stack.region,
        'service_users': list(stack_mod.SERVICE_USERS),
        'services': [{'name': name, 'type': kind,
                      'url': layout.url(port, path)}
                     for name, kind, port, path in CATALOG],
    }
    path = layout.etc / 'catalog.json'
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return _venv_python(stack, 'ministack.catalog', path, wait=False)


class _Background(threading.Thread):
    """A bring-up step in a thread; its exception re-raised on join."""

    def __init__(self, func, *args):
        super().__init__(daemon=True)
        self._func, self._args, self._error = func, args, None

    def run(self):
        try:
            self._func(*self._args)
        except BaseException as e:  # noqa: B036 - re-raised in the caller
            self._error = e

    def join_or_raise(self):
        self.join()
        if self._error is not None:
            raise self._error


def _background(func, *args):
    thread = _Background(func, *args)
    thread.start()
    return thread


def _after(first, func, *args):
    """``func(*args)`` once the background step ``first`` is done."""
    first.join_or_raise()
    func(*args)


def up(stack, args=None):
    started = time.monotonic()
    layout = stack.layout
    layout.make_dirs()
    install.ensure(layout)
    _step('venv', started)
    mariadb.up(stack)
    _step('mariadb', started)
    rabbitmq.up(stack)
    libvirt.up(stack)
    # Ceph (~30 s, mostly waiting on its daemons) comes up beside the rest.
    ceph_up = _background(ceph.up, stack)
    keystone.up(stack)
    _step('keystone', started)
    # The catalog (tens of Keystone calls) runs while the other services
    # migrate their databases and start: they need Keystone only when
    # they get a request. Each migration is its own process on its own
    # database, so they run side by side (serially they were the longest
    # step of bring-up: nova-manage alone runs four times); Cinder's
    # waits for Ceph, which cinder-volume's driver needs at start.
    catalog = _catalog(stack)
    migrating = [(svc.NAME + ' migrated', _background(svc.up, stack))
                 for svc in (placement, glance, neutron, coordinator)]
    migrating.append(('nova control migrated',
                      _background(nova.up_control, stack)))
    cinder_up = _background(_after, ceph_up, cinder.up, stack)
    rabbitmq.wait(stack)
    _step('rabbitmq', started)
    coordinator_up = migrating[3][1]
    coordinator_up.join_or_raise()
    coordinator.up_workers(stack)
    libvirt.wait(stack)
    _step('libvirtd', started)
    for label, thread in migrating:
        thread.join_or_raise()
        _step(label, started)
    # The computes start once nova is migrated and libvirtd answers; they
    # register with placement and the coordinator as those come up.
    nova.up_computes(stack)
    ceph_up.join_or_raise()
    # Cinder's cephx key exists once Ceph is up; Nova's stock RBD volumes
    # need it in each libvirtd (ministack.services.libvirt).
    libvirt.define_rbd_secrets(stack)
    _step('ceph', started)
    proc.finish(layout, 'catalog', catalog)
    _step('catalog', started)
    coordinator.wait(stack)
    _step('coordinator (2 replicas)', started)
    for svc in (placement, glance, neutron):
        svc.wait(stack)
        _step(svc.NAME, started)
    nova.up_placement_clients(stack)
    _venv_python(stack, 'ministack.probe', 'warm-neutron',
                 env=stack.openrc('admin'))
    cinder_up.join_or_raise()
    cinder.wait(stack)
    _venv_python(stack, 'ministack.volume_setup', cinder.MULTIATTACH_TYPE,
                 cinder.BACKEND, '120', env=stack.openrc('admin'))
    _step('cinder', started)
    nova.wait(stack)
    _venv_python(stack, 'ministack.probe', 'computes',
                 str(len(layout_mod.COMPUTES)), '120',
                 env=stack.openrc('admin'))
    nova.discover_hosts(stack)
    _step('nova (%d computes)' % len(layout_mod.COMPUTES), started)
    _write_openrc(stack)
    _print_endpoints(stack)
    print('ministack: up in %.1f s' % (time.monotonic() - started))
    return 0


def _write_openrc(stack):
    for user in ('demo', 'admin'):
        path = stack.layout.run_dir / ('openrc-' + user)
        path.write_text(_openrc_text(stack, user))
        path.chmod(0o600)


def _openrc_text(stack, user):
    return ''.join('export %s=%s\n' % (k, shlex.quote(v))
                   for k, v in stack.openrc(user).items())


def _print_endpoints(stack):
    layout = stack.layout
    print('ministack: endpoints')
    print('  identity   %s' % stack.keystone_url())
    for _name, kind, port, path in CATALOG:
        print('  %-10s %s' % (kind, layout.url(port, path)))
    print('ministack: openrc: . %s (admin: %s)' % (
        layout.run_dir / 'openrc-demo', layout.run_dir / 'openrc-admin'))


def down(stack, args=None):
    layout = stack.layout
    for svc in reversed(SERVICES):
        svc.down(stack)
    left = [n for n in all_names() if proc.running(layout, n)]
    if left:
        print('ministack: still running: %s' % ', '.join(left))
        return 1
    if not (args and args.keep):
        shutil.rmtree(layout.run_dir, ignore_errors=True)
    print('ministack: down')
    return 0


def status(stack, args=None):
    layout = stack.layout
    total = 0
    bad = 0
    for name in all_names():
        pid = proc.running(layout, name)
        rss = proc.rss_kib(pid) if pid else 0
        total += rss
        bad += not pid
        print('%-22s %-8s %8.1f MiB' % (
            name, pid or 'DOWN', rss / 1024.0))
    print('%-22s %-8s %8.1f MiB' % ('total', '', total / 1024.0))
    return 1 if bad else 0


def env(stack, args):
    print(_openrc_text(stack, args.user), end='')
    return 0


def demo(stack, args):
    """Up (unless it already is), the demo in the venv, down (if we upped).

    The demo itself (ministack/demo.py) runs in the ministack's venv: it
    builds the guest with fastboot_nova and uses the venv's CLIs.
    """
    layout = stack.layout
    was_up = (layout.run_dir / 'openrc-demo').exists() and all(
        proc.running(layout, n) for n in all_names())
    if not was_up:
        up(stack)
    try:
        env = stack.venv_env()
        env['PYTHONPATH'] = str(layout_mod.REPO)
        argv = [str(layout.bin('python')), '-m', 'ministack.demo',
                '--vms', str(args.vms)]
        if args.report:
            argv += ['--report', args.report]
        if args.stock:
            argv.append('--stock')
        return subprocess.run(argv, env=dict(os.environ, **env),
                              check=False).returncode
    finally:
        if not was_up and not args.keep_up:
            down(stack)
