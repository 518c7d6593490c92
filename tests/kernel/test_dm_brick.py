"""An origin attached through os-brick over iSCSI with CHAP, for real.

One TCG guest runs a LIO iSCSI target (rtslib-fb) on loopback over the
origin disk and the open-iscsi initiator; fastboot attaches the origin
through os-brick's ISCSIConnector, caches it with the dm engine and a VM
reads it (see ``tests/kernel/guest_brick.py``). A wrong CHAP password and
an unknown protocol leave nothing behind; the origin is attached again
after it was lost, and removal leaves no session and no dm device.

Skipped unless FASTBOOT_KERNEL_TESTS=1 (``tox -e kernel`` sets it).
"""

import json
import os

import testtools

from tests.kernel import kguest
from tests.kernel import test_dm_engine

#: Every byte crosses iSCSI on loopback under TCG: keep it small.
ORIGIN_MIB = 16


class TestDmBrickIscsi(test_dm_engine.KernelTestCase):

    def setUp(self):
        super().setUp()
        self.origin = os.path.join(self.tmp, 'origin-iscsi.raw')
        self.sha = test_dm_engine._write_origin(self.origin, ORIGIN_MIB,
                                                'origin-iscsi')

    def test_iscsi_chap_origin(self):
        # vdb state, vdc origin (the target's backstore), vdd cache.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0')]
        args = {'scenario': 'brick', 'privsep': 'inproc',
                'origin': '/dev/vdc', 'cache': '/dev/vdd', 'sha': self.sha}
        res = kguest.run(self.guest, test_dm_engine.SOURCE_DIR, disks,
                         ['%s=%s' % kv for kv in sorted(args.items())],
                         console_log=os.path.join(self.tmp, 'console.log'),
                         timeout=600)
        self.addDetail('console', testtools.content.text_content(
            res.console[-20000:]))
        self.assertIsNotNone(res.result, 'no result on the console (QEMU '
                             'exit %s); console:\n%s' % (
                                 res.returncode, res.console[-4000:]))
        self.addDetail('result', testtools.content.text_content(
            json.dumps(res.result, indent=1, sort_keys=True)))
        info = res.result.get('info', {})
        print('\n[ktest-brick] guest wall %.1fs, runner %.1fs, timings %s; '
              'attach %s s, wrong CHAP refused in %s s, path %s then %s' % (
                  res.wall_seconds, res.result.get('runner_seconds', 0),
                  res.result.get('timings'), info.get('attach_seconds'),
                  info.get('wrong_chap_seconds'), info.get('path'),
                  info.get('path_after_restore')))
        self.assertIsNone(res.result.get('error'))
        checks = res.result['checks']
        failed = {k: v for k, v in checks.items() if not v[0]}
        self.assertEqual({}, failed)
        for name in ('unknown_protocol_refused', 'refused_nothing_ran',
                     'wrong_chap_refused', 'wrong_chap_nothing_left',
                     'attached_scsi_disk', 'origin_over_iscsi',
                     'record_mode_0600', 'list_masks_secret',
                     'vm_reads_origin', 'reconcile_reattached',
                     'engine_follows_path', 'vm_reads_origin_after_restore',
                     'decoy_detached_session_kept', 'reconcile_again_noop',
                     'identity_has_wwid',
                     'detach_no_session', 'detach_no_disk',
                     'no_dm_devices_left', 'password_never_logged'):
            self.assertIn(name, checks)
        self.assertTrue(res.result['ok'])
