"""Privileged dm-multipath calls: one device over several paths.

A child host reaches its parent's cached image over two or more paths (one
NBD connection per parent server); the kernel's dm-multipath target sends
reads round-robin over the active paths, fails a path whose I/O errors and
retries the I/O on another one. No ``queue_if_no_path``: with every path
down a read fails at once instead of hanging.

No multipathd runs: a failed path stays failed until the device is
rebuilt. Names are fastboot's own and every path is checked like any
device the daemon builds on (:func:`~.utils.check_host_device`).
"""

import fastboot_nova.privsep
from fastboot_nova.privsep import nbd as nbd_priv
from fastboot_nova.privsep import utils

MAX_PATHS = 8
#: I/Os sent down a path before round-robin moves to the next one. The
#: kernel takes nothing but 1 (it warns and uses 1 for more).
RR_REPEAT = 1


def multipath_table(paths, length, repeat=RR_REPEAT):
    """The table of a multipath device: one round-robin group of paths."""
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)) or \
            not 1 <= len(paths) <= MAX_PATHS:
        raise utils.InvalidDmArgument(
            what='paths', value=paths,
            reason='expected 1 to %d paths' % MAX_PATHS)
    for path in paths:
        utils.check_device(path, 'path')
    if len(set(paths)) != len(paths):
        raise utils.InvalidDmArgument(what='paths', value=paths,
                                      reason='a path is listed twice')
    utils.check_int(length, 'length', 1, utils.MAX_SECTORS)
    utils.check_int(repeat, 'repeat', 1, 1 << 20)
    # <#features> <#hw handler args> <#groups> <first group>
    # <selector> <#selector args> <#paths> <#path args> (<path> <repeat>)*
    return '0 %d multipath 0 0 1 1 round-robin 0 %d 1 %s\n' % (
        length, len(paths),
        ' '.join('%s %d' % (p, repeat) for p in paths))


def parse_status(text):
    """Paths of a multipath ``dmsetup status`` line.

    :returns: list of ``{'device': 'major:minor', 'active': bool,
        'fail_count': int}``, or None if ``text`` is not a multipath
        status.
    """
    f = text.split()
    if len(f) < 4 or f[2] != 'multipath':
        return None
    try:
        i = 3
        i += 1 + int(f[i])          # features
        i += 1 + int(f[i])          # hardware handler
        groups = int(f[i])
        i += 2                      # number of groups, next group
        paths = []
        for _group in range(groups):
            i += 1                  # group state
            i += 1 + int(f[i])      # selector status args
            npaths, nargs = int(f[i]), int(f[i + 1])
            i += 2
            for _path in range(npaths):
                paths.append({'device': f[i], 'active': f[i + 1] == 'A',
                              'fail_count': int(f[i + 2])})
                i += 3 + nargs
    except (IndexError, ValueError):
        return None
    return paths


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_multipath(name, paths):
    """Create multipath device ``name`` over ``paths``; return its path.

    Every path must be an existing block device of the same size: they
    are meant to be the same data seen through different routes.
    """
    utils.check_own_name(name)
    multipath_table(paths, 1)
    sizes = set()
    for path in paths:
        utils.check_host_device(path, 'path')
        sizes.add(utils.device_sectors(path))
    if len(sizes) != 1 or 0 in sizes:
        raise utils.InvalidDmArgument(
            what='paths', value=paths,
            reason='the paths differ in size or are empty: %s' %
            sorted(sizes))
    return utils.create_device(name, multipath_table(paths, sizes.pop()))


def parents_table(parents, fallback, length, repeat=RR_REPEAT):
    """Multipath over parent paths, with ``fallback`` as the last group.

    Reads go round-robin over ``parents`` (NBD devices of parent hosts'
    exports); once every one of them has failed, dm-multipath moves to
    the second priority group, the host's own origin device: a dead
    parent costs the failed I/O a retry, not an error.
    """
    multipath_table(parents, length, repeat)
    utils.check_device(fallback, 'fallback')
    if fallback in parents:
        raise utils.InvalidDmArgument(what='fallback', value=fallback,
                                      reason='it is one of the parents')
    # queue_mode bio: the origin device starts as (bio-based) dm-linear,
    # and the kernel refuses to turn it request-based, multipath's
    # default, on a reload.
    return ('0 %d multipath 2 queue_mode bio 0 2 1 round-robin 0 %d 1 %s '
            'round-robin 0 1 1 %s %d\n' % (
                length, len(parents),
                ' '.join('%s %d' % (p, repeat) for p in parents),
                fallback, repeat))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_parents_multipath(name, parents, fallback):
    """Create multipath ``name``: ``parents`` first, ``fallback`` last.

    ``parents`` are ``/dev/nbdN`` devices of parent exports, ``fallback``
    the host's own origin device; all must have the same size. Bio-based
    (``queue_mode bio``), like the dm-linear it is stacked under.
    """
    utils.check_own_name(name)
    if isinstance(parents, str) or not isinstance(parents, (list, tuple)) \
            or not parents:
        raise utils.InvalidDmArgument(what='parents', value=parents,
                                      reason='expected a list of '
                                             '/dev/nbdN')
    for path in parents:
        nbd_priv.check_nbd_device(path)
        utils.check_host_device(path, 'parent')
    utils.check_host_device(fallback, 'fallback')
    sizes = {utils.device_sectors(p) for p in list(parents) + [fallback]}
    if len(sizes) != 1 or 0 in sizes:
        raise utils.InvalidDmArgument(
            what='parents', value=parents,
            reason='a parent differs in size from the origin: %s' %
            sorted(sizes))
    return utils.create_device(
        name, parents_table(list(parents), fallback, sizes.pop()))
