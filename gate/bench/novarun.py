"""The Nova benchmark's plan: both modes, for each N, in one cloud.

For each N, in the same in-process cloud (same computes):

stock
    N servers from the volume snapshot, each with its own new volume
    (``source_type=snapshot, destination_type=volume``): Cinder copies
    the snapshot N times.
fastboot
    one multiattach ``fastboot_cacheable`` volume made from the snapshot
    (one copy, timed with the boot), then N servers on it through
    FastBootDriver and the real qemu engine: by default in one request,
    from a fastboot image naming the volume; ``per-server`` sends a
    request per server booting from the volume itself.

Each mode ends with every server deleted; the driver removes the cache with
the host's last server (timed with the deletes, as an operator sees it), and
the shared volume is dropped (not timed), so the next N starts cold too.
"""

import contextlib
import time

from fastboot_nova import exception
from gate.bench import novacloud
from gate.bench import novareport
from gate.bench import volstore


def _timeout(count):
    # TCG-free, but a loaded 2-core machine: generous.
    return 300 + 10 * count


def _deleted(cloud, before, count, timeout=60):
    """Wait for Nova's volume deletes (they end the server delete)."""
    deadline = time.monotonic() + timeout
    while cloud.store.counters()['deleted'] - before < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return cloud.store.counters()['deleted'] - before


def _hosts_used(servers):
    return len({s['OS-EXT-SRV-ATTR:host'] for s in servers})


def measure_stock(cloud, snapshot_id, size_gib, count):
    prefix = 'stock%d' % count
    before = cloud.store.counters()
    started = time.monotonic()
    requests = novacloud.boot_stock(cloud, snapshot_id, size_gib, count,
                                    prefix)
    request_s = time.monotonic() - started
    servers = cloud.wait_all(prefix, count, 'ACTIVE', _timeout(count))
    active = time.monotonic() - started
    after = cloud.store.counters()
    roots = set()
    for server in servers:
        roots.update(cloud.cinder.volume_ids_for_instance(server['id']))
    created = after['created'] - before['created']

    started = time.monotonic()
    cloud.delete_all(servers)
    cloud.wait_all(prefix, 0, None, _timeout(count))
    deleted_s = time.monotonic() - started
    return {
        'servers_active': len(servers),
        'hosts_used': _hosts_used(servers),
        'caches': 0,
        'api_requests': requests,
        'volumes_created': created,
        'volumes_deleted': _deleted(cloud, before['deleted'], count),
        'root_volumes': len(roots),
        'bytes_copied': after['bytes_written'] - before['bytes_written'],
        'copy_seconds': after['copy_seconds'] - before['copy_seconds'],
        'volume_bytes': created * size_gib * volstore.GiB,
        'cache_bytes': 0,
        'overlay_bytes': 0,
        'fastboot_disks': 0,
        'active_seconds': active,
        'request_seconds': request_s,
        'delete_seconds': deleted_s,
    }


def measure_fastboot(cloud, snapshot_id, size_gib, count, boot=None):
    """:param boot: a boot step of novacloud (default FASTBOOT_BOOT)."""
    boot = boot or novacloud.FASTBOOT_BOOT
    prefix = 'fastboot%d' % count
    before = cloud.store.counters()
    started = time.monotonic()
    volume_id = cloud.create_shared_volume(snapshot_id)
    sent = time.monotonic()
    requests = boot(cloud, volume_id, count, prefix)
    request_s = time.monotonic() - sent
    servers = cloud.wait_all(prefix, count, 'ACTIVE', _timeout(count))
    active = time.monotonic() - started
    after = cloud.store.counters()
    roots = set()
    for server in servers:
        roots.update(cloud.cinder.volume_ids_for_instance(server['id']))
    wanted = {'nova-' + s['id'] for s in servers}
    disks = sum(len(wanted & {d.name for d in engine.list()})
                for engine in cloud.engines.values())
    cache = sum(volstore.tree_allocated_bytes(e.cache_dir)
                for e in cloud.engines.values())
    overlays = sum(volstore.tree_allocated_bytes(e.vm_dir)
                   for e in cloud.engines.values())
    created = after['created'] - before['created']
    image = 'cinder-' + volume_id
    caches = [e for e in cloud.engines.values()
              if any(c.name == image for c in e.list_images())]

    started = time.monotonic()
    cloud.delete_all(servers)
    cloud.wait_all(prefix, 0, None, _timeout(count))
    deleted_s = time.monotonic() - started

    for engine in caches:
        # Gone with its last server, unless [fastboot] keep_idle_caches.
        with contextlib.suppress(exception.ImageNotFound):
            engine.remove_image(image)
    cloud.delete_fastboot_images()
    cloud._volume_delete(None, volume_id)
    return {
        'servers_active': len(servers),
        'hosts_used': _hosts_used(servers),
        'caches': len(caches),
        'api_requests': requests,
        'volumes_created': created,
        'volumes_deleted': 0,
        'root_volumes': len(roots),
        'bytes_copied': after['bytes_written'] - before['bytes_written'],
        'copy_seconds': after['copy_seconds'] - before['copy_seconds'],
        'volume_bytes': created * size_gib * volstore.GiB,
        'cache_bytes': cache,
        'overlay_bytes': overlays,
        'fastboot_disks': disks,
        'active_seconds': active,
        'request_seconds': request_s,
        'delete_seconds': deleted_s,
    }


def run_bench(counts, image, hosts=1, progress=None, nova_as_is=False,
              fastboot_requests='one'):
    """Measure both modes for each N of ``counts``.

    :param image: the file the volume snapshot holds (raw or qcow2).
    :param progress: called with one-line messages.
    :param fastboot_requests: a key of ``novacloud.FASTBOOT_BOOTS``:
        ``one`` request (fastboot image) or one ``per-server``.
    :param nova_as_is: keep Nova's per-claim allocation listing (see
        :meth:`gate.bench.novacloud.BenchCloud.test_bench`).
    :returns: the dict of :func:`gate.bench.novareport.build_result`.
    """
    say = progress or (lambda message: None)
    boot = novacloud.FASTBOOT_BOOTS[fastboot_requests]
    info = volstore.image_info(image)
    runs = []
    params = {}
    started = time.monotonic()

    def plan(cloud):
        for i in range(hosts):
            cloud.start_compute('compute%d' % (i + 1))
        snapshot_id, size_gib = cloud.add_snapshot(image)
        params.update({
            'volume_size_gib': size_gib,
            'snapshot_allocated_bytes': volstore.allocated_bytes(
                cloud.store.path(snapshot_id)),
            'fastboot_boot': boot.__name__,
            'fastboot_requests': fastboot_requests,
        })
        say('cloud up (%d compute(s)), snapshot %s: %d GiB volume' % (
            hosts, snapshot_id, size_gib))
        for count in counts:
            novacloud.check_stop()
            stock = measure_stock(cloud, snapshot_id, size_gib, count)
            say('N=%d stock: %d volumes, all ACTIVE in %.1fs' % (
                count, stock['volumes_created'], stock['active_seconds']))
            fast = measure_fastboot(cloud, snapshot_id, size_gib, count,
                                    boot=boot)
            say('N=%d fastboot: %d volume(s), %d request(s), all ACTIVE in '
                '%.1fs' % (count, fast['volumes_created'],
                           fast['api_requests'], fast['active_seconds']))
            runs.append({'count': count, 'stock': stock, 'fastboot': fast})

    novacloud.run(plan, skip_reshape_listing=not nova_as_is)
    params.update({
        'counts': list(counts),
        'hosts': hosts,
        'nova_reshape_listing': nova_as_is,
        'image': image,
        'image_format': info['format'],
        'image_virtual_bytes': info['virtual-size'],
        'image_allocated_bytes': volstore.allocated_bytes(image),
    })
    return novareport.build_result(params, runs,
                                   time.monotonic() - started)
