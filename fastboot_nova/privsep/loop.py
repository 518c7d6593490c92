"""Privileged loop-device calls: attach and detach copy-on-write files.

The dm backend keeps each VM's copy-on-write store in a sparse file under
its state path and gives it to dm-snapshot through a loop device.
"""

import json
import os
import re
import stat

from fastboot_nova.i18n import _
import fastboot_nova.privsep
from fastboot_nova.privsep import dm as dm_priv

LOSETUP = 'losetup'
LOOP_RE = re.compile(r'^/dev/loop[0-9]{1,6}$')
FILE_RE = re.compile(r'^/[A-Za-z0-9_.+/-]{1,1023}$')


class LoopFailed(dm_priv.DmCommandFailed):
    message = _("losetup %(verb)s %(name)s failed: %(reason)s")


def check_file(path):
    if (not isinstance(path, str) or not FILE_RE.fullmatch(path) or
            '/../' in path + '/' or '/./' in path + '/' or '//' in path):
        raise dm_priv.InvalidDmArgument(
            what='path', value=path,
            reason='expected a plain absolute path')
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise dm_priv.InvalidDmArgument(what='path', value=path,
                                        reason='not a regular file')
    return path


def check_loop(device):
    if not isinstance(device, str) or not LOOP_RE.fullmatch(device):
        raise dm_priv.InvalidDmArgument(what='device', value=device,
                                        reason='expected /dev/loopN')
    return device


def _losetup(verb, name, *args):
    code, out, err = dm_priv.run_tool([LOSETUP] + list(args))
    if code != 0:
        raise LoopFailed(verb=verb, name=name,
                         reason=(err or out).strip() or
                         'exit code %s' % code)
    return out


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def attach(path):
    """Attach regular file ``path`` to a free loop device; return it."""
    check_file(path)
    out = _losetup('attach', path, '--find', '--show', '--nooverlap', path)
    return check_loop(out.strip())


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def detach(device):
    _losetup('detach', device, '--detach', check_loop(device))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def set_capacity(device):
    """Make loop ``device`` take the new size of its backing file."""
    _losetup('set-capacity', device, '--set-capacity', check_loop(device))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def list_attached():
    """Every loop device with its backing file: ``[[device, file]]``."""
    out = _losetup('list', 'all', '--list', '--json', '--output',
                   'NAME,BACK-FILE')
    if not out.strip():
        return []
    devices = json.loads(out).get('loopdevices', [])
    return sorted([d['name'], (d.get('back-file') or '').strip()]
                  for d in devices)
