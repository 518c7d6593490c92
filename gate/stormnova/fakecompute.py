"""nova-compute over nova's fake libvirt: the storm's compute process.

Run in the OpenStack venv as ``python -m gate.stormnova.fakecompute
--config-file ...`` (nova-compute's own arguments). Before nova-compute's
``main`` runs, nova's ``LibvirtFixture`` replaces the libvirt binding
with ``nova.tests.fixtures.libvirt`` (an in-memory libvirtd), the same
stubs nova's libvirt functional tests use are installed, and the fake
connection reports this compute's host name, so that K processes are K
distinct hypervisors. Everything above the binding is real: the compute
manager, Nova's LibvirtDriver and FastBootDriver (the image cache, the
per-server qcow2 disks made with qemu-img, the domain XML); only no
QEMU guest starts. This lets one 2-core machine run hundreds of servers
through the real control plane (RPC, database, RabbitMQ, placement).
"""

import io
import sys
from unittest import mock

#: Size of each fake hypervisor: room for a storm of tiny servers.
HOST_CPUS = 64
HOST_MEM_KIB = 256 * 1024 * 1024
#: The disk the fake host reports. LibvirtFixture mocks get_fs_info with
#: a bare MagicMock, which reads as 1 GB: DISK_GB capped a compute at
#: 16 tiny servers (x16 allocation ratio) and a 100-server storm on 4
#: computes failed NoValidHost on placement, not on any tuned setting.
HOST_DISK_GB = 10240


def _host_name(argv):
    """The ``[DEFAULT] host`` nova-compute will use (its config files)."""
    import configparser
    host = None
    for i, arg in enumerate(argv):
        if arg == '--config-file' and i + 1 < len(argv):
            parser = configparser.RawConfigParser(strict=False)
            parser.read(argv[i + 1])
            host = parser.defaults().get('host', host)
    if not host:
        raise SystemExit('fakecompute: no [DEFAULT] host in the config '
                         'files: every storm compute needs its own name')
    return host


def _fake_libvirt_module():
    """``nova.tests.fixtures.libvirt`` without its package's ``__init__``.

    The package imports every fixture, among them nova's functional test
    package, which monkey-patches eventlet at import: a threaded
    nova-compute must never import it. An empty package object stands in
    for ``nova.tests.fixtures`` so that only the fake libvirt module and
    its data module load.
    """
    import importlib
    import types

    import nova.tests
    name = 'nova.tests.fixtures'
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [nova.tests.__path__[0] + '/fixtures']
        sys.modules[name] = package
    return importlib.import_module(name + '.libvirt')


def install(host):
    """Install the fake binding and stubs; return what must stay alive."""
    fakelibvirt = _fake_libvirt_module()
    kept = [fakelibvirt.LibvirtFixture()]
    kept[0].setUp()
    cores = HOST_CPUS // 2
    info = fakelibvirt.HostInfo(cpu_nodes=1, cpu_sockets=1,
                                cpu_cores=cores, cpu_threads=2,
                                kB_mem=HOST_MEM_KIB)
    connection = fakelibvirt.Connection('qemu:///system', hostname=host,
                                        host_info=info)
    patches = [
        mock.patch('nova.virt.libvirt.host.Host._connect',
                   return_value=connection),
        mock.patch('nova.virt.libvirt.driver.libvirt_utils.'
                   'is_valid_hostname', return_value=True),
        mock.patch('nova.virt.libvirt.driver.libvirt_utils.file_open',
                   side_effect=lambda *a, **k: io.BytesIO(b'')),
        mock.patch('nova.privsep.utils.supports_direct_io',
                   return_value=True),
        # A new dict per call: the driver divides its values in place.
        mock.patch('nova.virt.libvirt.utils.get_fs_info',
                   side_effect=lambda path: {
                       'total': HOST_DISK_GB * 1024 ** 3,
                       'free': HOST_DISK_GB * 1024 ** 3, 'used': 0}),
        mock.patch('nova.virt.libvirt.host.Host.get_online_cpus',
                   return_value=set(range(HOST_CPUS))),
        # No event thread runs (LibvirtFixture stops it): the fake
        # domains' lifecycle events (a guest stopped on delete) are
        # dropped instead of queued for it. Nova polls the state anyway.
        mock.patch('nova.virt.libvirt.host.Host._event_emit_delayed'),
        # nova's CGroupsFixture (version 1): CPU quotas are supported.
        mock.patch('nova.virt.libvirt.host.Host.'
                   '_has_cgroupsv1_cpu_controller', return_value=True),
        mock.patch('nova.virt.libvirt.host.Host.'
                   '_has_cgroupsv2_cpu_controller', return_value=False),
    ]
    for p in patches:
        p.start()
    return kept + patches + [connection]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    sys.argv = ['nova-compute'] + list(argv)
    # First, as nova-compute itself: its import picks the concurrency
    # mode from the config files (native threads unless eventlet is
    # asked for) before anything else imports eventlet.
    from nova.cmd import compute
    keep = install(_host_name(argv))  # noqa: F841 - alive while we run
    return compute.main()


if __name__ == '__main__':
    sys.exit(main())
