"""The virtualenv the OpenStack services run from.

Made from Debian's /usr/bin/python3 with ``--system-site-packages``: the
Ceph bindings (python3-rados, python3-rbd) that Cinder's RBD driver needs
exist only as Debian packages. Everything else is pinned by
``constraints.txt`` (one OpenStack release: nova 34, cinder 29, keystone
30, glance 33, neutron 29, placement 16), and this repository is installed
editable so the computes run the working tree's driver.
"""

import subprocess

from ministack import layout as layout_mod
from ministack import proc

PACKAGES = ('nova', 'cinder', 'keystone', 'glance', 'openstack-placement',
            'neutron', 'python-openstackclient', 'python-novaclient',
            'gunicorn', 'PyMySQL', 'python-memcached', 'libvirt-python',
            'pyOpenSSL', 'tooz', 'etcd3gw', 'redis')

#: fastboot-coordinator execs uWSGI (this checkout goes in with
#: --no-deps, so its extras come from here: a fresh venv had none and the
#: replicas exited at start). Built here, never from pip's wheel cache:
#: uWSGI embeds libpython, and a wheel cached by another Python 3.11
#: (pyenv's) loads the wrong one (``No module named '_struct'``).
UWSGI = 'uWSGI==2.0.31'


def ready(layout):
    marker = layout.venv / '.ministack-ready'
    return marker.exists() and \
        marker.read_text() == layout.constraints_digest()


def ensure(layout):
    """Build the venv unless one for these constraints exists."""
    if ready(layout):
        _ensure_repo(layout)
        return False
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--system-site-packages',
                    '--clear', str(layout.venv)], check=True)
    pip = [str(layout.bin('pip')), 'install', '--quiet',
           '-c', str(layout_mod.CONSTRAINTS)]
    proc.run(layout, 'install', pip + list(PACKAGES), timeout=1800)
    proc.run(layout, 'install', pip + ['--no-cache-dir', '--no-binary',
                                      'uWSGI', UWSGI],
             timeout=1800)
    proc.run(layout, 'install', pip + [
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
    proc.run(layout, 'install', [
        layout.bin('pip'), 'install', '--quiet', '--no-deps', '-e',
        layout_mod.REPO])
    link.write_text(str(layout_mod.REPO))
