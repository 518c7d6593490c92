"""Privileged loop-device calls: attach and detach copy-on-write files.

The dm backend keeps each VM's copy-on-write store (and the thin-pool's
files) in sparse files under its state path and gives them to the kernel
through loop devices. Only such files: :func:`attach` takes a regular
file under ``[fastboot] state_path`` of the daemon's configuration
(resolved with realpath, a single hard link), and :func:`detach` and
:func:`set_capacity` only loop devices backed by one.
"""

import re

from fastboot_nova.i18n import _
import fastboot_nova.privsep
from fastboot_nova.privsep import utils

LOSETUP = 'losetup'
LOOP_RE = re.compile(r'^/dev/loop[0-9]{1,6}\Z')


class LoopFailed(utils.DmCommandFailed):
    message = _("losetup %(verb)s %(name)s failed: %(reason)s")


def check_loop(device):
    if not isinstance(device, str) or not LOOP_RE.fullmatch(device):
        raise utils.InvalidDmArgument(what='device', value=device,
                                      reason='expected /dev/loopN')
    return device


def _losetup(verb, name, *args):
    code, out, err = utils.run_tool([LOSETUP] + list(args))
    if code != 0:
        raise LoopFailed(verb=verb, name=name,
                         reason=(err or out).strip() or
                         'exit code %s' % code)
    return out


def _check_own_loop(device):
    """A loop device backed by a file under the state path."""
    check_loop(device)
    back = utils.loop_backing_files().get(device)
    if back is None:
        raise utils.InvalidDmArgument(what='device', value=device,
                                      reason='no such loop device')
    root = utils.confinement().state_path
    if not utils._under(back, root):
        raise utils.Refused(what='device', value=device,
                            reason='its file %s is outside the state path '
                                   '%s' % (back, root))
    return device


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def attach(path):
    """Attach regular file ``path`` (under the state path); return the
    loop device.
    """
    real = utils.check_state_file(path)
    out = _losetup('attach', path, '--find', '--show', '--nooverlap', real)
    device = check_loop(out.strip())
    # A directory swapped for a symlink between the check and losetup
    # would show here: give such a device back at once.
    back = utils.loop_backing_files().get(device)
    if back != real:
        _losetup('detach', device, '--detach', device)
        raise utils.Refused(what='path', value=path,
                            reason='it changed while it was attached')
    return device


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def detach(device):
    _losetup('detach', device, '--detach', _check_own_loop(device))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def set_capacity(device):
    """Make loop ``device`` take the new size of its backing file."""
    _losetup('set-capacity', device, '--set-capacity',
             _check_own_loop(device))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def list_attached():
    """Every loop device with its backing file: ``[[device, file]]``."""
    return sorted([dev, back]
                  for dev, back in utils.loop_backing_files().items())
