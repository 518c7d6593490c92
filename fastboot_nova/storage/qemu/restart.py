"""What the qemu engine's reconcile does with files and VM disks.

After a restart (of the daemon, nova-compute or the host) the state file
and the files on disk may disagree: a crash can leave a temporary file, a
cache no image owns, a VM half-made, or a disk backed on an export that
is now a sealed file. These steps settle each from what really exists;
VM data is only ever reported, never deleted.
"""

import logging
import os

from fastboot_nova import exception

LOG = logging.getLogger(__name__)


def remove_orphan_files(engine, st, report):
    """Remove cache files no image owns and half-made VM disks.

    VM disks the state does not know are reported, never deleted.
    """
    for name in sorted(os.listdir(engine.cache_dir)):
        image = name[:-len('.qcow2')] if name.endswith('.qcow2') \
            else None
        if image in st['images']:
            continue
        if name.endswith('.tmp'):
            image = name[:-len('.qcow2.tmp')]
        with engine._lock('image', image or name):
            if image in engine.state.read()['images']:
                continue
            os.unlink(os.path.join(engine.cache_dir, name))
            report.removed_orphan_caches.append(name)
    for name in sorted(os.listdir(engine.vm_dir)):
        path = os.path.join(engine.vm_dir, name)
        if name.startswith('.') and name.endswith('.qcow2.tmp'):
            vm = name[1:-len('.qcow2.tmp')]
            with engine._vm_locks(vm):
                if os.path.exists(path):
                    os.unlink(path)
                    report.removed_temp_files.append(path)
        elif name.endswith('.qcow2') and \
                name[:-len('.qcow2')] not in st['vms']:
            # VM data: report, never delete.
            report.orphan_disks.append(path)


def finish_vms(engine, report):
    """Settle VMs a crash left half-made; re-point moved backings.

    A backing moves when an export is re-made or a cache is sealed.
    """
    for vm, _checked in engine._checked_vms(engine.state.read(), report):
        with engine._vm_locks(vm):
            st = engine.state.read()
            entry = st['vms'].get(vm)
            if entry is None:
                continue
            exists = os.path.exists(engine._vm_path(vm))
            if entry.get('status') != 'ready':
                with engine.state.update() as st:
                    if exists:
                        st['vms'][vm]['status'] = 'ready'
                        report.completed_vms.append(vm)
                    else:
                        st['vms'].pop(vm)
                        report.dropped_vms.append(vm)
                continue
            if not exists:
                report.missing_disks.append(vm)
                continue
            rebase_if_moved(engine, vm, entry, st, report)


def rebase_if_moved(engine, vm, entry, st, report):
    want, fmt = engine._vm_backing(entry['image'],
                                 st['images'].get(entry['image'], {}))
    path = engine._vm_path(vm)
    info = engine.img.info(path)
    if info.get('full-backing-filename',
                info.get('backing-filename')) == want:
        return
    if engine.img.in_use(path):
        LOG.warning('Disk of VM %s points at an old export but is in '
                    'use; it will be re-pointed when it is free', vm)
        return
    try:
        engine.img.rebase_unsafe(path, want, fmt)
    except exception.CommandFailed as e:
        # A reader that opened the disk read-only passes in_use() but
        # still denies the write lock: leave the disk as it is.
        if 'lock' not in e.msg:
            raise
        LOG.warning('Disk of VM %s is open elsewhere; it will be '
                    're-pointed when it is free', vm)
        return
    report.rebased_disks.append(vm)
