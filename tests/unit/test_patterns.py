"""Input patterns match whole strings: a trailing newline is refused.

``^...$`` with ``re.match`` accepts ``"name\\n"`` (``$`` matches before a
final newline); every validation pattern ends in ``\\Z`` instead. (The
nova-api filter's SERVERS_PATH keeps ``$`` on purpose: it decides which
requests to check, so it must err towards matching.)
"""

from oslotest import base

from fastboot_nova.privsep import loop
from fastboot_nova.privsep import nbd
from fastboot_nova.privsep import utils
from fastboot_nova.storage.dm import brick
from fastboot_nova.storage import location
from fastboot_nova.storage.qemu import psk
from fastboot_nova.storage import rbd
from fastboot_nova.tuning import configfile

CASES = [
    (loop.LOOP_RE, '/dev/loop3'),
    (nbd.NBD_DEV_RE, '/dev/nbd0'),
    (nbd.TLS_PATH_RE, '/etc/fastboot/tls/key.pem'),
    (utils.NAME_RE, 'fb-0123abcd-cache-img'),
    (utils.DEVICE_RE, '/dev/vdb'),
    (utils.FILE_RE, '/var/lib/fastboot/thin/pool.data'),
    (utils.OWN_NAME_RE, 'fb-0123abcd-cache-img'),
    (brick.KEY_RE, 'target_portal'),
    (location._EXPORT_RE, 'img1'),
    (location._HOST_RE, '192.0.2.10'),
    (psk._IDENTITY_RE, 'fastboot'),
    (psk._KEY_RE, '0123456789abcdef0123456789abcdef'),
    (configfile._MYCNF_KEY, 'max_connections'),
    (rbd.POOL_RE, 'volumes'),
    (rbd.IMAGE_RE, 'volume-0123'),
    (rbd.USER_RE, 'cinder'),
    (rbd.CLUSTER_RE, 'ceph'),
    (rbd.PORT_RE, '6789'),
    (rbd.HOST_RE, 'mon1.example.org'),
    (rbd.PATH_RE, '/etc/ceph/ceph.conf'),
    (rbd.KEY_RE, 'AQDeadBeefAAAAAAc2VjcmV0c2VjcmV0c2VjcQ=='),
]


class TestWholeStringPatterns(base.BaseTestCase):

    def test_valid_values_match(self):
        for pattern, value in CASES:
            self.assertIsNotNone(pattern.match(value), pattern.pattern)

    def test_trailing_newline_refused(self):
        for pattern, value in CASES:
            self.assertIsNone(pattern.match(value + '\n'), pattern.pattern)
            self.assertIsNone(pattern.search(value + '\n'), pattern.pattern)
