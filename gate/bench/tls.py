"""What NBD TLS-PSK costs a child host reading its parent's cache.

A parent engine holds a warm, complete cache of a local image and exports
it on loopback TCP through its relay; a fresh child engine reads the whole
image through its own cache from that parent. Timed with ``export_auth =
psk`` and with ``none``, alternating, in the same run: the ratio is the
price of the encryption and the relay hop is in both. No guests, no
namespaces: a few seconds.
"""

import os
import shutil
import statistics
import subprocess
import tempfile
import time

from fastboot_nova.demo import multihost
from fastboot_nova import exception
from fastboot_nova import storage
from fastboot_nova.storage.qemu import cachegroup

MiB = 1024 * 1024
PORT_MIN = 24800
PORT_MAX = 24899


def _conf(**overrides):
    from oslo_config import cfg

    from fastboot_nova.conf import fastboot as fastboot_conf
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    fastboot_conf.set_overrides(conf, **dict(
        overrides, export_port_min=PORT_MIN, export_port_max=PORT_MAX))
    return conf


def _read_seconds(path, size):
    started = time.monotonic()
    subprocess.run(['qemu-io', '-r', '-f', 'qcow2', '-c',
                    'read 0 %d' % size, path], check=True,
                   capture_output=True)
    return time.monotonic() - started


def _check_connected(child):
    # A refused child would read from the image file instead, silently.
    with child.daemon.qmp() as qmp:
        nodes = cachegroup.node_names(qmp)
    if cachegroup.Nodes.of('img').source(1, 0) not in nodes:
        raise exception.FastbootException(
            'the child could not connect to its parent')


def tls_overhead(size_mib=64, rounds=3):
    """Median seconds for a child to read ``size_mib`` MiB, per mode."""
    work = tempfile.mkdtemp(prefix='fbtls-', dir='/tmp')
    engines = []
    try:
        image = os.path.join(work, 'image.raw')
        with open(image, 'wb') as f:
            for _ in range(size_mib):
                f.write(os.urandom(MiB))
        key = multihost.write_psk(os.path.join(work, 'exports.psk'))
        modes = {'psk': {'export_psk_file': key},
                 'none': {'export_auth': 'none'}}
        parents = {}
        for mode, opts in modes.items():
            parent = storage.get_engine(
                _conf(export_address='127.0.0.1', **opts),
                state_path=os.path.join(work, 'p-' + mode))
            engines.append(parent)
            parent.add_image('img', image)
            parent.prefetch('img')
            parents[mode] = parent
        seconds = {mode: [] for mode in modes}
        for n in range(rounds):
            for mode, opts in modes.items():
                child = storage.get_engine(
                    _conf(**opts),
                    state_path=os.path.join(work, 'c-%s-%d' % (mode, n)))
                engines.append(child)
                vm = child.create('vm', 'img', image)
                child.reparent('img', parents[mode].export_url('img'))
                _check_connected(child)
                seconds[mode].append(_read_seconds(vm.path,
                                                   size_mib * MiB))
                child.shutdown()
        return {'size_bytes': size_mib * MiB,
                'psk_seconds': round(statistics.median(seconds['psk']), 3),
                'none_seconds': round(statistics.median(seconds['none']),
                                      3)}
    finally:
        for engine in engines:
            engine.shutdown()
        shutil.rmtree(work, ignore_errors=True)
