"""A multi-host network testbed made of Linux network namespaces.

One origin namespace and H host namespaces, each joined by a veth pair to
a bridge in a private "switch" namespace, on a private test subnet that
exists only inside those namespaces. Multi-host functional tests and
``fastboot demo --hosts H`` use it to run one qemu-storage-daemon per
emulated host, rate-limit the links and count the bytes each link moved.

See :mod:`fastboot_nova.testbed.network` (the topology) and
:mod:`fastboot_nova.testbed.netns` (the namespace helpers).
"""

from fastboot_nova.testbed.netns import check_support  # noqa: F401
from fastboot_nova.testbed.netns import cleanup_prefix  # noqa: F401
from fastboot_nova.testbed.netns import netns_argv  # noqa: F401
from fastboot_nova.testbed.netns import netns_execute  # noqa: F401
from fastboot_nova.testbed.netns import popen  # noqa: F401
from fastboot_nova.testbed.netns import run  # noqa: F401
from fastboot_nova.testbed.netns import TestbedError  # noqa: F401
from fastboot_nova.testbed.network import LinkCounters  # noqa: F401
from fastboot_nova.testbed.network import Node  # noqa: F401
from fastboot_nova.testbed.network import parse_rate  # noqa: F401
from fastboot_nova.testbed.network import Testbed  # noqa: F401
