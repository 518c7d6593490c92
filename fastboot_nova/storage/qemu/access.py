"""Let the VMs' QEMU reach their disks: group access to the state path.

A VM disk is a qcow2 overlay under ``<state_path>/vms`` whose backing is
the cache's NBD export on ``<state_path>/nbd.sock``. The engine runs as
root and keeps both private (0750 directories, a 0750 socket); a QEMU
started by libvirt runs as its own user (``libvirt-qemu`` on Debian).
libvirt chowns the overlay file it is given, but not the directories
above it, and never relabels a network backing store: without access the
domain fails to start with "Cannot access storage file ... Permission
denied" (seen on ministack with real libvirt 9.0).

``[fastboot_qemu] client_group`` names QEMU's group: the state path and
``vms`` are given to it with mode 0750 (traverse and list, no write),
and the NBD socket with mode 0770 (connecting to a unix socket needs
write permission). A disk on a sealed cache backs on the cache file
itself: that file (0640, read-only by then) and ``caches`` (0750) too.
Nothing else (other caches, keys, the state file, QMP) is opened to it.
"""

import grp
import os

from fastboot_nova import exception


def group_id(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise exception.FastbootException(
            '[fastboot_qemu] client_group %r is not a group of this host'
            % name)


def _grant(path, gid, mode):
    # lchown/lstat: a symlink placed here is never followed.
    st = os.lstat(path)
    if st.st_gid != gid:
        os.lchown(path, -1, gid)
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode, follow_symlinks=False)


def grant_clients(state_path, vm_dir, nbd_socket, group,
                  backing_file=None):
    """Give ``group`` what QEMU needs to open a VM disk; no-op if None.

    ``backing_file``: a sealed cache the disk backs on directly (read
    only, off the daemon): its directory 0750 and the file 0640.
    """
    if not group:
        return
    gid = group_id(group)
    _grant(state_path, gid, 0o750)
    _grant(vm_dir, gid, 0o750)
    if os.path.exists(nbd_socket):
        _grant(nbd_socket, gid, 0o770)
    if backing_file:
        _grant(os.path.dirname(backing_file), gid, 0o750)
        _grant(backing_file, gid, 0o640)
