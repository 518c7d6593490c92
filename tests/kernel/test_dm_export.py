"""Export a host's cache over NBD and attach it over two paths, for real.

One TCG guest plays parent and child over loopback (see
``tests/kernel/guest_export.py``): the parent exports the dm-cache device
of an image through two nbd-servers, the child builds a dm-multipath
device over two NBD connections, caches it in its own cache group and
reads through a VM snapshot; a server is stopped mid-read and the read
must complete with the right data through the other path.

``test_export_tls``: the parent serves over TLS only; the child's
CA-signed certificate is served, no certificate, a certificate of another
CA and a parent the child's CA did not sign are refused; the read of the
same 16 MiB over TLS and over plain NBD is timed (``tls/plain``).

Skipped unless FASTBOOT_KERNEL_TESTS=1 (``tox -e kernel`` sets it).
"""

import io
import os
import random
import shutil
import subprocess
import tarfile

from tests.kernel import test_dm_engine

CACHE2_MIB = 128
#: Smaller than the engine test's origin: every byte crosses NBD (twice
#: per read: parent cache, then child) under TCG.
ORIGIN_MIB = 16


class TestDmExport(test_dm_engine.KernelTestCase):

    def setUp(self):
        super().setUp()
        self.origin = os.path.join(self.tmp, 'origin-export.raw')
        self.sha = test_dm_engine._write_origin(self.origin, ORIGIN_MIB,
                                                'origin-export')
        self.cache2 = os.path.join(self.tmp, 'cache2.raw')
        with open(self.cache2, 'wb') as f:
            f.write(random.Random('cache2').randbytes(CACHE2_MIB << 20))

    def test_child_reads_parent_in_the_tree(self):
        # vdb state, vdc origin (both hosts), vdd parent cache, vde child,
        # vdf the certificates (bindep's test profile installs openssl).
        certs = os.path.join(self.tmp, 'certs')
        os.mkdir(certs, 0o700)
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.cache2, 'cache1'),
                 (make_certs(certs), 'certs')]
        args = {'scenario': 'tree', 'privsep': 'daemon',
                'origin': '/dev/vdc', 'cache': '/dev/vdd',
                'cache2': '/dev/vde', 'certs': '/dev/vdf', 'sha': self.sha,
                'origin_sectors': (ORIGIN_MIB << 20) // 512}
        res = self.run_guest(disks, args)
        info = res.result.get('info', {})
        print('\n[ktest-tree] guest wall %.1fs, timings %s; reparent %s s, '
              'NBD sectors / parent cache reads before and after the '
              'child read %s; read across the parent loss %s' % (
                  res.wall_seconds, res.result.get('timings'),
                  info.get('reparent_seconds'),
                  info.get('nbd_sectors_and_parent_cache_reads'),
                  info.get('failover_read')))
        self.assert_checks(res, (
            'parent_exported', 'parent_export_tls_only',
            'child_follows_parent', 'misses_went_to_parent',
            'read_survives_parent_loss', 'dead_parent_stall_bounded',
            'parent_path_failed', 'child_back_on_origin',
            'export_restored', 'tree_teardown'))

    def test_export_multipath_failover(self):
        # vdb state, vdc origin, vdd parent cache, vde child cache.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.cache2, 'cache1')]
        args = {'scenario': 'export', 'privsep': 'daemon',
                'origin': '/dev/vdc', 'cache': '/dev/vdd',
                'cache2': '/dev/vde', 'sha': self.sha}
        res = self.run_guest(disks, args)
        info = res.result.get('info', {})
        print('\n[ktest-export] guest wall %.1fs, runner %.1fs, timings %s; '
              'nbd connect %s s, create_multipath %s s, read across the '
              'path loss %s s' % (
                  res.wall_seconds, res.result.get('runner_seconds', 0),
                  res.result.get('timings'), info.get('seconds_connect'),
                  info.get('seconds_create_multipath'),
                  info.get('failover_read_seconds')))
        self.assert_checks(res, (
            'two_paths', 'mpath_reads_origin', 'bad_input_refused',
            'bad_input_nothing_built', 'child_vm_reads_origin',
            'read_survives_path_loss', 'one_path_failed', 'no_path_read_fails',
            'detach_disconnects', 'no_dm_devices_left'))


def make_certs(directory):
    """A CA, a parent and a child certificate of it, and a rogue one.

    With the openssl CLI, as the README tells operators to. The rogue
    client certificate is signed by another CA.
    """
    def run(*argv):
        subprocess.run(('openssl',) + argv, cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    newkey = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
              '-nodes')
    for ca in ('ca', 'otherca'):
        run('req', '-x509', *newkey, '-keyout', ca + '.key', '-out',
            ca + '.pem', '-days', '2', '-subj', '/CN=fastboot test ' + ca)
    for name, ca, san in (('server', 'ca', 'IP:127.0.0.1,DNS:parent'),
                          ('client', 'ca', 'DNS:child'),
                          ('rogue', 'otherca', 'DNS:child')):
        run('req', *newkey, '-keyout', name + '.key', '-out', name + '.csr',
            '-subj', '/CN=' + name, '-addext', 'subjectAltName=' + san)
        run('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
            '-CAkey', ca + '.key', '-CAcreateserial', '-days', '2',
            '-copy_extensions', 'copy', '-out', name + '.pem')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for name in ('ca.pem', 'otherca.pem', 'server.pem', 'server.key',
                     'client.pem', 'client.key', 'rogue.pem', 'rogue.key'):
            tar.add(os.path.join(directory, name), arcname=name)
    data = buf.getvalue()
    disk = os.path.join(directory, 'certs.tar')
    with open(disk, 'wb') as f:
        f.write(data.ljust(-(-len(data) // (1 << 20)) * (1 << 20), b'\0'))
    return disk


class TestDmExportTls(test_dm_engine.KernelTestCase):

    def setUp(self):
        super().setUp()
        if not shutil.which('openssl'):
            self.skipTest('the openssl CLI makes the test certificates')
        self.origin = os.path.join(self.tmp, 'origin-export.raw')
        self.sha = test_dm_engine._write_origin(self.origin, ORIGIN_MIB,
                                                'origin-export')
        certs = os.path.join(self.tmp, 'certs')
        os.mkdir(certs, 0o700)
        self.certs = make_certs(certs)

    def test_export_tls(self):
        # vdb state, vdc origin, vdd parent cache, vde the certificates.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.certs, 'certs')]
        args = {'scenario': 'export_tls', 'privsep': 'daemon',
                'origin': '/dev/vdc', 'cache': '/dev/vdd',
                'certs': '/dev/vde', 'sha': self.sha}
        res = self.run_guest(disks, args)
        info = res.result.get('info', {})
        print('\n[ktest-export-tls] guest wall %.1fs, timings %s; attach '
              '(2 paths) TLS %s s (connects %s), plain %s s; read of %d MiB '
              '(2 paths): TLS %s s, plain %s s, tls/plain %s; refusals %s'
              % (res.wall_seconds, res.result.get('timings'),
                  info.get('tls_attach_seconds'),
                  info.get('seconds_connect'),
                  info.get('plain_attach_seconds'), ORIGIN_MIB,
                  info.get('tls_read_seconds'),
                  info.get('plain_read_seconds'),
                  info.get('tls_plain_ratio'), info.get('refusals')))
        self.assert_checks(res, (
            'tls_two_paths', 'tls_mpath_reads_origin', 'refused',
            'refused_nothing_built', 'loose_key_refused', 'plain_reads_origin',
            'no_nbd_left', 'no_dm_devices_left'))
