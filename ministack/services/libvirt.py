"""One libvirtd per emulated compute host (see ``ministack.nshost``)."""

import shutil

from ministack import layout as layout_mod
from ministack import proc

NAMES = tuple('libvirtd-' + h for h in layout_mod.COMPUTES)


def host_dir(stack, host):
    return stack.layout.data('libvirt-' + host)


def socket_path(stack, host):
    return host_dir(stack, host) / 'run' / 'libvirt-sock'


def connection_uri(stack, host):
    return 'qemu:///system?socket=%s' % socket_path(stack, host)


def _prepare(stack, host):
    base = host_dir(stack, host)
    (base / 'run').mkdir(parents=True, exist_ok=True)
    (base / 'etc-qemu').mkdir(exist_ok=True)
    lib = base / 'lib-qemu'
    lib.mkdir(exist_ok=True)
    shutil.chown(lib, 'libvirt-qemu', 'libvirt-qemu')
    lib.chmod(0o750)
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


def down(stack):
    destroy_domains(stack)
    for host in layout_mod.COMPUTES:
        proc.stop(stack.layout, 'libvirtd-' + host)


def destroy_domains(stack):
    """Remove domains left on the hosts (a clean ``down`` finds none)."""
    left = []
    for host in layout_mod.COMPUTES:
        if not socket_path(stack, host).exists():
            continue
        uri = connection_uri(stack, host)
        out = proc.output(['virsh', '-c', uri, 'list', '--all', '--name'])
        for name in out.split():
            left.append('%s:%s' % (host, name))
            proc.output(['virsh', '-c', uri, 'destroy', name], check=False)
            proc.output(['virsh', '-c', uri, 'undefine', '--nvram', name],
                        check=False)
    return left
