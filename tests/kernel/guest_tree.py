"""Runs INSIDE the kernel-test guest: the dm backend in the hosts' tree.

Two engines in one guest over loopback, with the default export
settings (NBD over TLS, certificates of one CA made by the host test),
play a parent and a child host of one volume (both see the origin disk,
as two hosts attached to one Cinder volume would). What the host agent
does is driven through the engine interface it uses:

- the parent's ``add_image`` exports its cache; ``export_url`` is an
  ``nbd://`` URL that the agent's probe reaches;
- the child's ``reparent`` to that URL switches its origin device to a
  multipath device over the parent's export, live, with a VM open on the
  image: the child's misses then go to the
  parent's cache (read counters of the NBD device and of the parent's
  dm-cache prove it);
- the parent's export stops in the middle of a child's read: the read
  finishes with the right data from the origin (the multipath fallback
  group), and no 1 MiB read stalls much longer than the child's
  ``[fastboot_dm] parent_timeout`` (measured);
- ``reparent`` back to the origin, then teardown: no device, server or
  connection left.
"""

import time

from tests.kernel import guest_export
from tests.kernel import guest_runner as gr

PARENT_STATE = '/var/lib/fastboot/tree-parent'
#: The child's [fastboot_dm] parent_timeout: well under nbd-client's own
#: 30 s, so a stall bounded by it proves the option is what ends it.
CHILD_PARENT_TIMEOUT = 5
#: What a read may take beyond parent_timeout under TCG: the multipath
#: switch and the rest of the 1 MiB block from the origin.
STALL_SLACK = 8
CHILD_STATE = '/var/lib/fastboot/tree-child'


def _engine(state_path, cache, port, host_cert):
    """A host's engine; ``host_cert``: its certificate's base name."""
    import os
    eng = guest_export.make_engine(state_path, cache)
    for key, value in (('export_address', '127.0.0.1'),
                       ('export_port_min', port),
                       ('export_port_max', port + 9)):
        eng.conf.set_override(key, value, 'fastboot')
    # The default: TLS with certificates of one CA, both ways.
    tls_dir = guest_export.TLS_DIR
    for key, name in (('export_tls_cert_file', host_cert + '.pem'),
                      ('export_tls_key_file', host_cert + '.key'),
                      ('export_tls_ca_file', 'ca.pem')):
        eng.conf.set_override(key, os.path.join(tls_dir, name),
                              'fastboot_dm')
    eng.conf.set_override('export_allowed', ['127.0.0.1/32'], 'fastboot_dm')
    return eng


def _nbd_sectors_read(device):
    import os
    with open('/sys/block/%s/stat' % os.path.basename(device)) as f:
        return int(f.read().split()[2])


def _cache_reads(eng):
    stats = eng.cache_stats('img')
    return stats['read_hits'] + stats['read_misses']


def _read_with_stall(path, at_mib, action):
    """Read ``path``; ``action()`` after ``at_mib`` MiB.

    :returns: ``(sha256, error, seconds of the longest 1 MiB read)``.
    """
    import hashlib
    gr.drop_caches()
    digest, n, longest = hashlib.sha256(), 0, 0.0
    try:
        with open(path, 'rb', buffering=0) as f:
            while True:
                if n == at_mib:
                    action()
                t = time.monotonic()
                block = f.read(1 << 20)
                longest = max(longest, time.monotonic() - t)
                if not block:
                    break
                digest.update(block)
                n += 1
    except OSError as e:
        return None, '%s after %d MiB' % (e, n), longest
    return digest.hexdigest(), None, longest


def scenario_tree(run, args):
    import os

    from fastboot_nova.hierarchy import agent
    import fastboot_nova.privsep.dm as dm
    import fastboot_nova.privsep.nbd as nbd
    from fastboot_nova.storage.dm import tree

    guest_export.loopback_up()
    guest_export.unpack_certs(args['certs'])
    parent = _engine(PARENT_STATE, args['cache'], 10809, 'server')
    child = _engine(CHILD_STATE, args['cache2'], 10819, 'client')
    child.conf.set_override('parent_timeout', CHILD_PARENT_TIMEOUT,
                            'fastboot_dm')
    run.step('setup')

    # -- parent: cache and export ---------------------------------------------
    parent.add_image('img', args['origin'])
    (p_image,) = parent.list_images()
    url = p_image.export_url
    run.info['parent_export_url'] = url
    conf_file = os.path.join(nbd.RUN_DIR, url.rsplit('/', 1)[1] + '.conf')
    with open(conf_file) as f:
        server_conf = f.read()
    run.check('parent_exported', url.startswith('nbd://127.0.0.1:10809/')
              and agent.probe(url), url)
    run.check('parent_export_tls_only', 'force_tls = true' in server_conf
              and 'tlsonly = true' in server_conf, server_conf)
    run.step('parent_export')

    # -- child: a VM on the origin, then the parent, live --------------------
    vm = child.create('vm1', 'img', args['origin'])
    run.check('child_vm_reads_origin', gr.sha256_of(vm.path) == args['sha'])
    origin_dev = child.dm_name('origin', 'img')
    fd = open(vm.path, 'rb')  # a VM holds its disk open throughout
    try:
        t = time.monotonic()
        child.reparent('img', url)
        run.info['reparent_seconds'] = round(time.monotonic() - t, 2)
        (c_image,) = child.list_images()
        mp = child.state.read()['images']['img']['parent_mpath']
        table = dm.table(mp)
        run.info['child_mpath_table'] = table.strip()
        run.info['child_origin_table'] = dm.table(origin_dev).strip()
        run.check('child_follows_parent', c_image.parents == (url,) and
                  ' multipath ' in table and
                  ' linear ' in dm.table(origin_dev),
                  [c_image.parents, table])
        (nbd_dev,) = nbd.connected_devices()
        before = (_nbd_sectors_read(nbd_dev), _cache_reads(parent))
        run.check('vm_reads_through_parent',
                  gr.sha256_of(vm.path) == args['sha'])
        after = (_nbd_sectors_read(nbd_dev), _cache_reads(parent))
        run.info['nbd_sectors_and_parent_cache_reads'] = [before, after]
        # The child's own cache promotes nothing on a first read (smq):
        # about the whole image must have come over NBD.
        run.check('misses_went_to_parent',
                  after[0] - before[0] >= int(args['origin_sectors']) // 2 and
                  after[1] > before[1], [before, after])
        run.step('child_reads_parent')

        # -- the parent's export dies mid-read --------------------------
        # Stopped 4 MiB into a read. Over TLS the stalled request can wait
        # for the NBD timeout before dm-multipath moves to the origin: the
        # child's [fastboot_dm] parent_timeout bounds that wait, and the
        # longest 1 MiB read is measured against it.
        timeout = child.opts.parent_timeout
        sha, err, stall = _read_with_stall(
            vm.path, 4, lambda: tree.unexport(parent, 'img'))
        run.info['failover_read'] = {
            'longest_block_seconds': round(stall, 2), 'error': err,
            'parent_timeout': timeout}
        run.check('read_survives_parent_loss', sha == args['sha'] and
                  err is None, run.info['failover_read'])
        run.check('dead_parent_stall_bounded',
                  stall <= timeout + STALL_SLACK, run.info['failover_read'])
        status = dm.status(mp)
        run.info['child_mpath_status'] = status.strip()
        run.check('parent_path_failed', ' F ' in status, status)
        run.check('agent_sees_parent_dead', not agent.probe(url))
        run.step('parent_loss')

        # -- back to the origin ----------------------------------------------
        child.reparent('img', args['origin'])
        (c_image,) = child.list_images()
        table = dm.table(origin_dev)
        run.check('child_back_on_origin', c_image.parents == () and
                  ' linear ' in table and not nbd.connected_devices() and
                  mp not in [n for n, _a, _b in dm.list_devices()],
                  [c_image.parents, table, nbd.connected_devices()])
        run.check('vm_still_reads', gr.sha256_of(vm.path) == args['sha'])
        run.step('back_to_origin')
    finally:
        fd.close()

    # -- the agent's round restores the parent's export ----------------------
    restarted = parent.ensure_exports()
    run.check('export_restored', restarted == ['img'] and agent.probe(url),
              restarted)

    child.destroy('vm1')
    child.remove_image('img')
    parent.remove_image('img')
    run.check('tree_teardown', not dm.list_devices() and
              not nbd.list_servers() and not nbd.connected_devices(),
              [dm.list_devices(), nbd.list_servers(),
               nbd.connected_devices()])
    run.step('teardown')
