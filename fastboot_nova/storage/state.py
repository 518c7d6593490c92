"""The host-local state file of a block engine.

One JSON document, replaced atomically (write, fsync, rename) under an
inter-process lock. It records what the engine built; ``reconcile``
compares it with what really exists. nova-compute opens no database, so
this file plus the live daemon are the host's whole truth.
"""

import contextlib
import copy
import hashlib
import json
import os

from oslo_concurrency import lockutils

from fastboot_nova import exception
from fastboot_nova import fileutils

VERSION = 1


def _empty():
    return {'version': VERSION, 'images': {}, 'vms': {}, 'export': {}}


class StateFile:
    """Read and update ``<state_path>/state.json``."""

    def __init__(self, state_path):
        self.path = os.path.join(state_path, 'state.json')
        self.lock_path = os.path.join(state_path, 'locks')
        # Unique per state path: lockutils shares in-process semaphores
        # between locks of the same name.
        self.lock_prefix = hashlib.sha256(
            os.path.abspath(state_path).encode()).hexdigest()[:8] + '-'

    def read(self):
        """The current state (a copy; changing it changes nothing)."""
        try:
            with open(self.path, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            return _empty()
        except (OSError, ValueError) as e:
            # Never start over from an empty state: that would orphan
            # every VM disk this host holds.
            raise exception.StateError(path=self.path, reason=e)
        if not isinstance(data, dict) or data.get('version') != VERSION:
            raise exception.StateError(
                path=self.path,
                reason='unknown layout (version %r)' % (
                    data.get('version') if isinstance(data, dict) else
                    None))
        for key, value in _empty().items():
            data.setdefault(key, value)
        return data

    @contextlib.contextmanager
    def update(self):
        """Yield the state for changes; written back only on success."""
        with lockutils.lock(self.lock_prefix + 'state', external=True,
                            lock_path=self.lock_path):
            data = self.read()
            before = copy.deepcopy(data)
            yield data
            if data != before:
                self._write(data)

    def _write(self, data):
        write_json(self.path, data)


def write_json(path, data):
    """Replace ``path`` with ``data`` as JSON, atomically and durably.

    Through :func:`fastboot_nova.fileutils.write_private`: mode 0600 (it
    may hold secrets), an exclusive temporary name, fsync, rename, and
    the directory fsynced so the rename survives a crash.
    """
    fileutils.write_private(
        path, json.dumps(data, indent=1, sort_keys=True))
