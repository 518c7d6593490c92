"""The kernel-test guest finds its Debian archive in apt's sources."""

from oslotest import base

from tests.kernel import kguest


class TestAptSources(base.BaseTestCase):

    def test_one_line_style(self):
        text = ('# comment\n'
                'deb http://m.example/debian-security bookworm-security main\n'
                'deb [arch=amd64] http://m.example/debian bookworm main\n')
        self.assertEqual('http://m.example/debian',
                         kguest.parse_apt_sources(text, 'bookworm'))

    def test_deb822_style(self):
        text = ('Types: deb\n'
                'URIs: http://m.example/debian-security\n'
                'Suites: bookworm-security\n'
                '\n'
                'Types: deb deb-src\n'
                'URIs: http://m.example/debian http://n.example/debian\n'
                'Suites: bookworm bookworm-updates\n'
                'Components: main\n')
        self.assertEqual('http://m.example/debian',
                         kguest.parse_apt_sources(text, 'bookworm'))

    def test_no_source_for_the_suite(self):
        self.assertIsNone(kguest.parse_apt_sources(
            'Types: deb-src\nURIs: http://m.example/debian\n'
            'Suites: bookworm\n', 'bookworm'))
        self.assertIsNone(kguest.parse_apt_sources(
            'deb http://m.example/debian trixie main\n', 'bookworm'))
