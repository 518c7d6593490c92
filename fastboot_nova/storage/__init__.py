"""The block engine: a per-host cache group and per-VM snapshots.

``get_engine()`` returns the backend chosen by ``[fastboot] backend``.
"""

from fastboot_nova import exception


def get_engine(conf, state_path=None, execute=None):
    """Return the engine of ``conf.fastboot.backend``.

    :param state_path: overrides ``[fastboot] state_path``.
    :param execute: command runner, injected by tests.
    """
    backend = conf.fastboot.backend
    if backend == 'qemu':
        from fastboot_nova.storage.qemu import engine
        return engine.QemuEngine(conf, state_path=state_path,
                                 execute=execute)
    if backend == 'dm':
        from fastboot_nova.storage.dm import engine
        return engine.DmEngine(conf, state_path=state_path, execute=execute)
    raise exception.BackendUnavailable(backend=backend,
                                       reason='unknown backend')
