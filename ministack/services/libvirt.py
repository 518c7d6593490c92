"""One libvirtd per emulated compute host (see ``ministack.nshost``).

Each libvirtd also holds the cephx key of Cinder's user as a libvirt
secret, so Nova's stock RBD volume path (``[libvirt] rbd_user`` /
``rbd_secret_uuid``) opens Cinder's volumes the way an operator's compute
does. The secret is ephemeral and private (in libvirtd's memory only:
the hosts' libvirtds share /etc/libvirt/secrets with the machine), and
the key goes to virsh in a 0600 file, never on a command line or in a
log.
"""

import os
import shutil
import tempfile
import uuid

from ministack import layout as layout_mod
from ministack import proc
from ministack.services import ceph

NAMES = tuple('libvirtd-' + h for h in layout_mod.COMPUTES)


def host_dir(stack, host):
    return stack.layout.data('libvirt-' + host)


def socket_path(stack, host):
    return host_dir(stack, host) / 'run' / 'libvirt-sock'


def connection_uri(stack, host):
    return 'qemu:///system?socket=%s' % socket_path(stack, host)


# No per-domain /dev: libvirt builds one by copying /dev's nodes and
# moving the mounts under it, and the mount that hides /dev/kvm
# (ministack.nshost) cannot be moved ("Unable to move ... mount to
# /dev/kvm: Invalid argument"), so no guest would start.
QEMU_CONF = 'namespaces = []\n'


def _prepare(stack, host):
    base = host_dir(stack, host)
    (base / 'run').mkdir(parents=True, exist_ok=True)
    (base / 'etc-qemu').mkdir(exist_ok=True)
    lib = base / 'lib-qemu'
    lib.mkdir(exist_ok=True)
    shutil.chown(lib, 'libvirt-qemu', 'libvirt-qemu')
    lib.chmod(0o750)
    # nshost mounts it over /etc/libvirt/qemu.conf in the namespace.
    (base / 'qemu.conf').write_text(QEMU_CONF)
    (base / 'libvirtd.conf').write_text(
        'unix_sock_dir = "%s"\n'
        'unix_sock_ro_perms = "0700"\n'
        'unix_sock_rw_perms = "0700"\n'
        'auth_unix_ro = "none"\n'
        'auth_unix_rw = "none"\n'
        'listen_tls = 0\n'
        'listen_tcp = 0\n' % (base / 'run'))


def up(stack):
    for host in layout_mod.COMPUTES:
        _prepare(stack, host)
        proc.start(stack.layout, 'libvirtd-' + host, [
            'unshare', '--mount', '--uts', '--propagation', 'private', '--',
            '/usr/bin/python3', '-m', 'ministack.nshost', host,
            host_dir(stack, host)], cwd=layout_mod.REPO)


def wait(stack):
    for host in layout_mod.COMPUTES:
        path = socket_path(stack, host)
        proc.wait(stack.layout, 'libvirtd-' + host, path.exists, timeout=60)


def define_rbd_secrets(stack):
    """Every libvirtd gets Cinder's cephx key; needs Ceph up (its keyring).

    Ephemeral secrets die with libvirtd: call again after a restart.
    """
    for host in layout_mod.COMPUTES:
        define_rbd_secret(stack, host)


def rbd_secret_uuid(stack):
    """The UUID of the cephx secret, one per run directory."""
    path = stack.layout.etc / 'rbd-secret-uuid'
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(uuid.uuid4()))
    return path.read_text().strip()


def _cephx_key(stack):
    keyring = ceph.keyring_path(stack.layout, 'client.' + ceph.CINDER_USER)
    for line in keyring.read_text().splitlines():
        key, sep, value = line.partition('=')
        if sep and key.strip() == 'key':
            return value.strip()
    raise proc.ServiceFailed('libvirt-secret', 'no key in %s' % keyring)


def define_rbd_secret(stack, host):
    """Give ``host``'s libvirtd Cinder's cephx key (idempotent)."""
    uri = connection_uri(stack, host)
    ident = rbd_secret_uuid(stack)
    xml = ("<secret ephemeral='yes' private='yes'><uuid>%s</uuid>"
           "<usage type='ceph'><name>client.%s secret</name></usage>"
           "</secret>" % (ident, ceph.CINDER_USER))
    with tempfile.TemporaryDirectory(dir=stack.layout.etc) as tmp:
        os.chmod(tmp, 0o700)
        xml_path = os.path.join(tmp, 'secret.xml')
        key_path = os.path.join(tmp, 'key')
        with open(xml_path, 'w') as f:
            f.write(xml)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(_cephx_key(stack))
        proc.output(['virsh', '-c', uri, 'secret-define', xml_path])
        proc.output(['virsh', '-c', uri, 'secret-set-value', '--secret',
                     ident, '--file', key_path])


def down(stack):
    destroy_domains(stack)
    for host in layout_mod.COMPUTES:
        proc.stop(stack.layout, 'libvirtd-' + host)


def destroy_domains(stack):
    """Remove domains left on the hosts (a clean ``down`` finds none).

    Only a libvirtd that still runs can be asked: after a reboot the
    sockets are left in the run directory with nobody listening.
    """
    left = []
    for host in layout_mod.COMPUTES:
        if not proc.running(stack.layout, 'libvirtd-' + host):
            continue
        uri = connection_uri(stack, host)
        out = proc.output(['virsh', '-c', uri, 'list', '--all', '--name'])
        for name in out.split():
            left.append('%s:%s' % (host, name))
            proc.output(['virsh', '-c', uri, 'destroy', name], check=False)
            proc.output(['virsh', '-c', uri, 'undefine', '--nvram', name],
                        check=False)
    return left
