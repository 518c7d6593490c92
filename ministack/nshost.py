"""Run one emulated compute host's libvirtd (and virtlogd) in namespaces.

Started as ``unshare --mount --uts --propagation private -- python3 -m
ministack.nshost HOST DIR``: a private UTS namespace gives libvirtd its own
host name (Nova names the compute node and its placement resource provider
after libvirt's host name, so two computes on one libvirtd would collide),
and a private mount namespace gives it its own /run/libvirt, domain
definitions and QEMU state, so two libvirtds on one machine do not adopt
each other's domains. libvirtd's sockets are in DIR/run, outside the
namespace, where nova-compute reaches them by ``connection_uri``. Images,
overlays and fastboot's NBD sockets stay on the shared file system.

The namespace also hides /dev/kvm: ministack's guests are TCG (``virt_type
= qemu``), and where /dev/kvm exists but the QEMU user cannot open it (a
root-only 0600 node, as on these PVM hosts), libvirt 9's capabilities probe
finds KVM while its cache check finds it unusable ("KVM was enabled when
probing ..., but it is not available now"), so it probes QEMU again on
nearly every API call: 6-16 s per call, Nova's first spawn on a host took
over 90 s, and one probe hung for minutes. Its qemu.conf is private too
(``ministack.services.libvirt.QEMU_CONF``): no per-domain /dev namespace,
which could not carry the mount that hides /dev/kvm.
"""

import os
import pathlib
import subprocess
import sys


KVM = '/dev/kvm'


def _mount(*args):
    subprocess.run(['mount', *args], check=True)


def _hide(path, placeholder):
    """Mount an empty root-only file over ``path`` in this namespace."""
    fd = os.open(placeholder, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    _mount('--bind', str(placeholder), path)


def main(argv=None):
    host, base = (sys.argv[1:] if argv is None else argv)
    base = pathlib.Path(base)
    subprocess.run(['hostname', host], check=True)
    # The mount point only (Debian's libvirt makes it at its first start).
    os.makedirs('/run/libvirt', mode=0o755, exist_ok=True)
    _mount('-t', 'tmpfs', '-o', 'mode=0755', 'ms-' + host, '/run/libvirt')
    for private, target in (('etc-qemu', '/etc/libvirt/qemu'),
                            ('lib-qemu', '/var/lib/libvirt/qemu')):
        _mount('--bind', str(base / private), target)
    _mount('--bind', str(base / 'qemu.conf'), '/etc/libvirt/qemu.conf')
    if os.path.exists(KVM):
        _hide(KVM, base / 'no-kvm')
    os.execvp('sh', ['sh', '-c',
                     'virtlogd -p "$1" & exec libvirtd -f "$2" -p "$3"',
                     'sh', str(base / 'virtlogd.pid'),
                     str(base / 'libvirtd.conf'), str(base / 'libvirtd.pid')])


if __name__ == '__main__':
    main()
