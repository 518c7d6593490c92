"""The virtualenv the OpenStack services run from.

Made from Debian's /usr/bin/python3 with ``--system-site-packages``: the
Ceph bindings (python3-rados, python3-rbd) that Cinder's RBD driver needs
exist only as Debian packages. Everything else is pinned by
``constraints.txt`` (one OpenStack release: nova 34, cinder 29, keystone
30, glance 33, neutron 29, placement 16), and this repository is installed
editable so the computes run the working tree's driver.

The packages go in with uv when there is one (see ``uv()``): it resolves
and installs them several times faster than pip, which stays the
fallback. The venv itself is still made by ``python3 -m venv``, so it has
its own pip for whatever adds a package later (gate.stormnova does).
"""

import os
import re
import shutil
import subprocess

from ministack import layout as layout_mod
from ministack import proc

PACKAGES = ('nova', 'cinder', 'keystone', 'glance', 'openstack-placement',
            'neutron', 'python-openstackclient', 'python-novaclient',
            'gunicorn', 'PyMySQL', 'python-memcached', 'libvirt-python',
            'pyOpenSSL', 'tooz', 'etcd3gw', 'redis')

#: fastboot-coordinator execs uWSGI (this checkout goes in with
#: --no-deps, so its extras come from here: a fresh venv had none and the
#: replicas exited at start). Built here, never from a wheel cache (see
#: ``uwsgi_wheel_argv``).
UWSGI = 'uWSGI==2.0.31'


def ready(layout):
    marker = layout.venv / '.ministack-ready'
    return marker.exists() and \
        marker.read_text() == layout.constraints_digest()


def uv():
    """The uv executable to install with, or None for the venv's pip.

    ``MINISTACK_UV`` names one (``MINISTACK_UV=pip`` forces pip);
    otherwise ``uv`` on PATH, then the one tox-uv brought into
    tools/install-deps.sh's bootstrap virtualenv
    (``FASTBOOT_BOOTSTRAP_VENV``, default ``.tox-bootstrap``): tox runs
    ``python3 -m ministack`` with its environment's PATH, which has not
    got the bootstrap's bin/.
    """
    wanted = os.environ.get('MINISTACK_UV')
    if wanted == 'pip':
        return None
    if wanted:
        found = shutil.which(wanted)
        if not found:
            raise RuntimeError('MINISTACK_UV=%s: no such executable' % wanted)
        return found
    bootstrap = os.environ.get('FASTBOOT_BOOTSTRAP_VENV') or str(
        layout_mod.REPO / '.tox-bootstrap')
    for candidate in (shutil.which('uv'),
                      os.path.join(bootstrap, 'bin', 'uv')):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def installer(layout, uv_path):
    """The argv that installs into the venv: uv if given, else its pip."""
    if uv_path:
        return [uv_path, 'pip', 'install', '--quiet',
                '--python', str(layout.bin('python'))]
    return [str(layout.bin('pip')), 'install', '--quiet']


#: Prints ``name version`` for each distribution the new (empty) venv
#: sees outside itself: Debian's, through --system-site-packages.
_SYSTEM_DISTS = '''
import importlib.metadata as md, sys
for d in md.distributions():
    if not str(d.locate_file('')).startswith(sys.prefix):
        print(d.metadata['Name'], d.version)
'''

_PLAIN_VERSION = re.compile(r'^[0-9]+(\.[0-9]+)*$')


def _normalize(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def system_pins(layout):
    """Pin what Debian's site-packages has that constraints.txt does not.

    pip keeps a requirement that a system package satisfies; uv ignores
    system site-packages and would install the newest release instead
    (oauthlib 4 over Debian's 3.2). These pins give uv pip's set. Only
    plain release versions: a Debian one like 1.2+dfsg is left free.
    """
    out = subprocess.run([str(layout.bin('python')), '-c', _SYSTEM_DISTS],
                         check=True, capture_output=True, text=True).stdout
    pinned = {_normalize(line.split('==')[0]) for line in
              layout_mod.CONSTRAINTS.read_text().splitlines()
              if '==' in line and not line.startswith('#')}
    pins = {}
    for line in out.splitlines():
        name, _, version = line.partition(' ')
        key = _normalize(name)
        if key in pinned or key in ('pip', 'setuptools', 'wheel') or \
                not _PLAIN_VERSION.match(version):
            continue
        pins.setdefault(key, '%s==%s' % (key, version))
    path = layout.cache_dir / 'system-constraints.txt'
    path.write_text(''.join(p + '\n' for p in sorted(pins.values())))
    return path


def uwsgi_wheel_argv(layout, wheels):
    """Build uWSGI's wheel from source with the venv's Python, no cache.

    uWSGI embeds libpython, and a wheel cached by another Python 3.11
    (pyenv's) loads the wrong one (``No module named '_struct'``). The
    venv's own pip builds it, whichever installer does the rest.
    """
    return [str(layout.bin('pip')), 'wheel', '--quiet', '--no-deps',
            '--no-cache-dir', '--no-binary', 'uWSGI',
            '-c', str(layout_mod.CONSTRAINTS), '-w', str(wheels), UWSGI]


def ensure(layout):
    """Build the venv unless one for these constraints exists."""
    if ready(layout):
        _ensure_repo(layout)
        return False
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--system-site-packages',
                    '--clear', str(layout.venv)], check=True)
    uv_path = uv()
    install = installer(layout, uv_path) + ['-c', str(layout_mod.CONSTRAINTS)]
    if uv_path:
        install += ['-c', str(system_pins(layout))]
    wheels = layout.cache_dir / 'wheels'
    shutil.rmtree(wheels, ignore_errors=True)
    # uWSGI compiles (a minute of CPU) while the rest downloads.
    build = proc.spawn(layout, 'install-uwsgi',
                       uwsgi_wheel_argv(layout, wheels))
    try:
        proc.run(layout, 'install', install + list(PACKAGES), timeout=1800)
    except BaseException:
        build.kill()
        build.wait()
        raise
    proc.finish(layout, 'install-uwsgi', build, timeout=1800)
    proc.run(layout, 'install', install + ['--no-deps'] + sorted(
        str(w) for w in wheels.glob('*.whl')))
    proc.run(layout, 'install', install + [
        '-r', str(layout_mod.REPO / 'requirements.txt')], timeout=1800)
    _ensure_repo(layout, force=True)
    (layout.venv / '.ministack-ready').write_text(
        layout.constraints_digest())
    return True


def _ensure_repo(layout, force=False):
    """Install this checkout (editable) unless the venv already points here."""
    link = layout.venv / '.ministack-repo'
    if not force and link.exists() and \
            link.read_text() == str(layout_mod.REPO):
        return
    proc.run(layout, 'install', installer(layout, uv()) + [
        '--no-deps', '-e', str(layout_mod.REPO)])
    link.write_text(str(layout_mod.REPO))
