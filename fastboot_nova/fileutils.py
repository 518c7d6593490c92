"""Safe file writing and bounded reading, for every caller.

Secrets (coordinator tokens, pre-shared keys, os-brick records) and state
live in directories another local user or a compromised service may be
able to plant files in. A writer that opens a predictable ``<path>.tmp``
with ``O_TRUNC`` follows a planted symlink and writes the secret wherever
it points; a reader that reads "the whole file" hangs on ``/dev/zero``.
So there is exactly one writer and one reader here:

- :func:`write_private` makes a fresh, unpredictable temporary file in the
  target's directory (``mkstemp``: ``O_CREAT | O_EXCL``, mode 0600, no
  symlink followed), writes, fsyncs, renames it over the target (a rename
  replaces a symlink itself, never its target) and fsyncs the directory;
- :func:`read_bounded` reads at most a given number of bytes of a regular
  file, refusing devices, FIFOs and directories.
"""

import contextlib
import os
import stat
import tempfile

from fastboot_nova import exception
from fastboot_nova.i18n import _

#: Default bound of :func:`read_bounded`: far more than any
#: connection_info, key file or token fastboot reads.
MAX_READ_BYTES = 1024 * 1024


class FileTooLarge(exception.FastbootException):
    message = _("%(path)s is larger than %(limit)d bytes")


class NotRegularFile(exception.FastbootException):
    message = _("%(path)s is not a regular file")


def fsync_dir(path):
    """Make a rename or a new file in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path, data, mode=0o600):
    """Replace ``path`` with ``data`` (bytes or str), atomically, 0600.

    Never follows a symlink planted at ``path`` or at any temporary name:
    the temporary file is created exclusively under a random name, and
    the rename replaces whatever entry ``path`` is.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def create_private(path, mode=0o600):
    """Create the empty file ``path`` exclusively (no symlink followed).

    For files a tool then fills (``qemu-img create`` keeps the mode of an
    existing file), so a VM disk is never readable by others, not even
    for a moment.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                 os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    os.fchmod(fd, mode)
    os.close(fd)
    return path


def read_bounded(path, limit=MAX_READ_BYTES):
    """The bytes of regular file ``path``, at most ``limit`` of them.

    :raises NotRegularFile: a device, FIFO or directory.
    :raises FileTooLarge: more than ``limit`` bytes.
    :raises OSError: the file cannot be opened.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
    # checked on what was opened, so a symlink swapped in between changes
    # nothing.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise NotRegularFile(path=path)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path=path, limit=limit)
    return data
