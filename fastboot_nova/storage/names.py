"""Validation of the names users give to VMs, images and snapshots.

Names become file names, QEMU node names and NBD export names, so only a
conservative alphabet is allowed: no path separators, no ``..``, no spaces
and nothing a shell or QEMU's option parser would treat specially.
"""

import re

from fastboot_nova import exception

MAX_LENGTH = 63
#: Characters of a refused name an error message shows: a 100,000
#: character name must not be echoed whole into logs and terminals.
SHOWN_LENGTH = 80
_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


def shown(value, limit=SHOWN_LENGTH):
    """``value`` for an error message: only its start when it is long."""
    if not isinstance(value, str) or len(value) <= limit:
        return value
    return '%s... (%d characters)' % (value[:limit], len(value))


def validate(name, kind='VM'):
    """Return ``name`` if it is a safe name, else raise InvalidName.

    The error shows at most :data:`SHOWN_LENGTH` characters of ``name``.
    """
    if not isinstance(name, str) or not name:
        raise exception.InvalidName(kind=kind, name=name,
                                    reason='it must not be empty')
    if len(name) > MAX_LENGTH:
        raise exception.InvalidName(
            kind=kind, name=shown(name),
            reason='it is longer than %d characters' % MAX_LENGTH)
    if '..' in name:
        raise exception.InvalidName(kind=kind, name=name,
                                    reason="it must not contain '..'")
    if not _NAME_RE.fullmatch(name):
        raise exception.InvalidName(
            kind=kind, name=name,
            reason='use letters, digits, and . _ - (not first)')
    return name
