"""How much room the qemu engine's caches may take.

A cache file grows, block by block, up to its image's virtual size: a new
cache is refused unless every cache can still reach its full size within
``[fastboot] cache_size_limit`` and the free space of the file system.
"""

import os

from fastboot_nova import exception


def allocated(path):
    """Bytes the file ``path`` takes on disk (0 when it is gone)."""
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def check(image, size, images, cache_path, cache_dir, limit):
    """Refuse a cache of ``size`` bytes that could outgrow limit or disk.

    :param images: the state's image entries.
    :param cache_path: ``cache_path(image)``, the cache file of an image.
    :param limit: bytes all caches may reserve; 0 for no limit.
    """
    # Existing caches keep filling up to their virtual size: count what
    # they may still take, so caches are never overcommitted.
    pending = 0
    reserved = 0
    for name, entry in images.items():
        reserved += entry['virtual_size']
        if not entry.get('prefetched'):
            pending += max(0, entry['virtual_size'] -
                           allocated(cache_path(name)))
    if limit and reserved + size > limit:
        raise exception.CacheFull(image=image, path=cache_dir, need=size,
                                  free=max(0, limit - reserved))
    vfs = os.statvfs(cache_dir)
    free = vfs.f_bavail * vfs.f_frsize - pending
    if size > free:
        raise exception.CacheFull(image=image, path=cache_dir, need=size,
                                  free=max(0, free))
