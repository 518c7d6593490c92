"""Validation of the names users give to VMs, images and snapshots.

Names become file names, QEMU node names and NBD export names, so only a
conservative alphabet is allowed: no path separators, no ``..``, no spaces
and nothing a shell or QEMU's option parser would treat specially.
"""

import re

from fastboot_nova import exception

MAX_LENGTH = 63
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


def validate(name, kind='VM'):
    """Return ``name`` if it is a safe name, else raise InvalidName."""
    if not isinstance(name, str) or not name:
        raise exception.InvalidName(kind=kind, name=name,
                                    reason='it must not be empty')
    if len(name) > MAX_LENGTH:
        raise exception.InvalidName(
            kind=kind, name=name,
            reason='it is longer than %d characters' % MAX_LENGTH)
    if '..' in name:
        raise exception.InvalidName(kind=kind, name=name,
                                    reason="it must not contain '..'")
    if not _NAME_RE.fullmatch(name):
        raise exception.InvalidName(
            kind=kind, name=name,
            reason='use letters, digits, and . _ - (not first)')
    return name
