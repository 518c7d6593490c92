"""What a host accepts as a parent's export URL (issue 10, item 1)."""

from oslotest import base

from fastboot_nova import exception
from fastboot_nova.storage import location


class TestParseParent(base.BaseTestCase):

    def test_tcp_exports_of_the_image(self):
        for url in ('nbd://10.0.0.2:10809/img', 'nbd://10.0.0.2/img',
                    'nbd://[2001:db8::1]:7000/img', 'nbd://host-b.example/img',
                    'nbd://10.0.0.2:7000/fb-ab12-exp-img-7000'):
            loc = location.parse_parent(url, image='img')
            self.assertEqual('nbd-tcp', loc.kind)

    def assert_refused(self, url, words, **kwargs):
        e = self.assertRaises(exception.InvalidLocation,
                              location.parse_parent, url, **kwargs)
        self.assertIn(words, e.msg)

    def test_local_sockets_and_paths_are_refused(self):
        for url in ('nbd+unix:///otherimg?socket=/var/lib/fastboot/nbd.sock',
                    'nbd+unix:///img?socket=/run/x.sock', '/dev/sda',
                    'file:///etc/shadow', 'NBD://10.0.0.2/img', '',
                    None):
            self.assert_refused(url, 'nbd://HOST:PORT/EXPORT', image='img')

    def test_bad_hosts_and_ports_are_refused(self):
        for url in ('nbd://0.0.0.0:10809/img', 'nbd://[::]:10809/img',
                    'nbd://224.0.0.1/img', 'nbd://-bad.example/img',
                    'nbd://a..b/img', 'nbd://1.2.3/img',
                    'nbd://fe80::1/img', 'nbd://10.0.0.2:0/img',
                    'nbd://10.0.0.2:99999/img', 'nbd://10.0.0.2/img\n',
                    'nbd://u@10.0.0.2/img', 'nbd://10.0.0.2/img?x=1'):
            self.assertRaises(exception.InvalidLocation,
                              location.parse_parent, url, image='img')

    def test_another_image_is_refused(self):
        for url in ('nbd://10.0.0.2:10809/otherimg',
                    'nbd://10.0.0.2:7000/fb-ab12-exp-otherimg-7000',
                    'nbd://10.0.0.2:7000/fb-ab12-exp-img-7001',
                    'nbd://10.0.0.2:7000/img2'):
            self.assert_refused(url, 'is not one of image img', image='img')

    def test_own_export_is_refused(self):
        own = 'nbd://10.0.0.9:7000/img'
        for url in (own, 'nbd://127.0.0.1:7000/img',
                    'nbd://localhost:7000/img', 'nbd://[::1]:7000/img'):
            self.assert_refused(url, "own export", image='img', own=own)
        # Another host with the same port and export is a parent.
        location.parse_parent('nbd://10.0.0.2:7000/img', image='img',
                              own=own)
        # Without a TCP export of its own nothing is compared.
        location.parse_parent('nbd://127.0.0.1:7000/img', image='img',
                              own='nbd+unix:///img?socket=/s')


class TestCheckParents(base.BaseTestCase):

    def test_the_origin_and_local_paths_pass(self):
        origin = 'nbd+unix:///origin?socket=/run/o.sock'
        location.check_parents([origin, '/dev/sdb'], 'img', origin=origin)

    def test_another_unix_socket_is_refused(self):
        self.assertRaises(
            exception.InvalidLocation, location.check_parents,
            ['nbd://10.0.0.2/img', 'nbd+unix:///img?socket=/run/b.sock'],
            'img', origin='nbd+unix:///img?socket=/run/o.sock')


class TestCheckAddress(base.BaseTestCase):

    def test_good(self):
        for address in ('10.0.0.1', '2001:db8::1', 'compute-1',
                        'compute-1.example.org', 'localhost', '127.0.0.1'):
            self.assertEqual(address, location.check_address(address))

    def test_bad(self):
        for address in ('', 'host\n', 'a b', 'x' * 254, '-a', 'a-',
                        '0.0.0.0', '::', 'a_b', '1.2.3', 'a/b', '[::1]',
                        'ff02::1', 'a' * 64):
            self.assertRaises(ValueError, location.check_address, address)
