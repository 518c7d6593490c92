"""``apply``: write a profile into existing config files, safely.

For each file: read and parse it strictly (a file that does not parse is
never rewritten: every file is parsed before the first is written), set
every setting that ``check`` would fail to the profile's value (values
that already pass, e.g. a larger pool a human chose, are left alone),
re-parse the result and check it again, keep a backup of the original,
then replace the file atomically: a temporary file in the same directory,
fsync, rename over the original with the original's mode and owner, fsync
of the directory. A symlink is followed, so the link stays a link.
"""

import dataclasses
import os
import tempfile
import time

from fastboot_nova.tuning import checker
from fastboot_nova.tuning import configfile
from fastboot_nova.tuning import exception


@dataclasses.dataclass(frozen=True)
class Change:
    path: str
    setting: object
    old: str | None
    new: int
    backup: str | None

    def line(self):
        old = self.old if self.old is not None else '(unset)'
        return 'set %s %s = %s (was %s)' % (
            self.path, self.setting.label(), self.new, old)


def plan(profile, config_file, doc):
    """Edit ``doc`` in memory; return the (setting, old value) pairs."""
    edits = []
    for finding in checker.judge(profile, config_file.kind,
                                   config_file.path, doc):
        if finding.failed:
            s = finding.setting
            old = doc.set(s.section, s.name, s.value,
                          comment='fastboot-tune: %s (%s)'
                          % (s.reason, s.formula))
            edits.append((s, old))
    return edits


def apply(profile, files, backup=True, dry_run=False):
    """Write ``profile`` into ``files``; return the :class:`Change` list.

    Raises ConfigFileError, leaving every file untouched, if one cannot
    be read or parsed.
    """
    planned = []
    for f in files:
        doc = f.read()
        edits = plan(profile, f, doc)
        if edits:
            _verify(profile, f, doc)
            planned.append((f, doc, edits))
    changes = []
    for f, doc, edits in planned:
        saved = None
        if not dry_run:
            target = os.path.realpath(f.path)
            saved = _backup(target) if backup else None
            replace(target, doc.text().encode('utf-8'))
        changes += [Change(f.path, s, old, s.value, saved)
                    for s, old in edits]
    return changes


def _verify(profile, f, doc):
    # The edited text must parse and pass: a writer bug must not land.
    again = configfile.parse(f.format, doc.text(), f.path)
    left = [x for x in checker.judge(profile, f.kind, f.path, again)
            if x.failed]
    if left:
        raise exception.TuningError(
            reason='%s: still failing after the edit: %s'
            % (f.path, left[0].line()))


def _backup(path):
    """Copy ``path`` next to it, never overwriting an earlier backup."""
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    st = os.stat(path)
    with open(path, 'rb') as src:
        data = src.read()
    for n in range(100):
        name = '%s.fastboot-tune-%s%s.bak' % (path, stamp,
                                              '-%d' % n if n else '')
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         st.st_mode & 0o7777)
        except FileExistsError:
            continue
        with os.fdopen(fd, 'wb') as out:
            _keep_owner(out.fileno(), st, name)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return name
    raise exception.ConfigFileError(path=path,
                                    reason='no free backup file name')


def replace(path, data):
    """Atomically replace ``path`` with ``data``, keeping mode and owner."""
    st = os.stat(path)
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % base,
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as out:
            os.fchmod(out.fileno(), st.st_mode & 0o7777)
            _keep_owner(out.fileno(), st, path)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory or '.', os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _keep_owner(fd, st, path):
    if (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()):
        return
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError:
        raise exception.ConfigFileError(
            path=path, reason='cannot keep its owner %d:%d (run as root or '
                              'as the owner)' % (st.st_uid, st.st_gid))
