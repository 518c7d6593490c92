"""An origin attached through os-brick over iSCSI with CHAP, for real.

One TCG guest runs a LIO iSCSI target (rtslib-fb) on loopback over the
origin disk and the open-iscsi initiator; fastboot attaches the origin
through os-brick's ISCSIConnector, caches it with the dm engine and a VM
reads it (see ``tests/kernel/guest_brick.py``). A wrong CHAP password and
an unknown protocol leave nothing behind; the origin is attached again
after it was lost, and removal leaves no session and no dm device.

Skipped unless FASTBOOT_KERNEL_TESTS=1 (``tox -e kernel`` sets it).
"""

import os

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
        res = self.run_guest(disks, args, timeout=600)
        info = res.result.get('info', {})
        print('\n[ktest-brick] guest wall %.1fs, runner %.1fs, timings %s; '
              'attach %s s, wrong CHAP refused in %s s, path %s then %s' % (
                  res.wall_seconds, res.result.get('runner_seconds', 0),
                  res.result.get('timings'), info.get('attach_seconds'),
                  info.get('wrong_chap_seconds'), info.get('path'),
                  info.get('path_after_restore')))
        self.assert_checks(res, (
            'unknown_protocol_refused', 'refused_nothing_ran',
            'wrong_chap_refused', 'wrong_chap_nothing_left',
            'attached_scsi_disk', 'origin_over_iscsi', 'record_mode_0600',
            'list_masks_secret', 'vm_reads_origin', 'reconcile_reattached',
            'engine_follows_path', 'vm_reads_origin_after_restore',
            'decoy_detached_session_kept', 'reconcile_again_noop',
            'identity_has_wwid', 'detach_no_session', 'detach_no_disk',
            'no_dm_devices_left', 'password_never_logged'))
