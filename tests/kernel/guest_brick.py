"""Runs INSIDE the kernel-test guest: an os-brick iSCSI origin, for real.

One guest is both the storage array and the host: a LIO iSCSI target
(rtslib-fb over configfs) serves the origin disk (``origin``, a block
backstore) on 127.0.0.1:3260 with CHAP on its node ACL; open-iscsi's
iscsid is the initiator. The fastboot code under test
(:mod:`fastboot_nova.storage.dm.brick`, the functions the CLI commands
call) attaches it through os-brick's ISCSIConnector, the dm engine caches
it and a VM reads it; the origin is then lost as after a reboot and
attached again; removal must leave no session and no dm device. Bad
input: a wrong CHAP password and an unknown protocol.

os-brick runs as root here with its privsep context in client mode off
(``os_brick.privileged.default.set_client_mode(False)``): its
entrypoints run in this process. A real host starts its privsep-helper
instead (README.rst).
"""

import io
import json
import logging
import os
import subprocess
import time

from tests.kernel import guest_export
from tests.kernel import guest_runner as gr

STATE = '/var/lib/fastboot/brick'
TARGET_IQN = 'iqn.2026-11.org.fastboot:origin'
INITIATOR_IQN = 'iqn.2026-11.org.fastboot:host1'
CHAP_USER = 'fbhost1'
CHAP_PASSWORD = 'Sup3rSecretChapPw'
WRONG_PASSWORD = 'Wr0ngChapPassword'
PORTAL = '127.0.0.1:3260'


def _writable(path):
    """Mount a tmpfs over ``path``, with the files it held.

    The root file system is read-only.
    """
    saved = {}
    if os.path.isdir(path):
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                with open(full, 'rb') as f:
                    saved[name] = f.read()
    os.makedirs(path, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', path], check=True)
    for name, data in saved.items():
        with open(os.path.join(path, name), 'wb') as f:
            f.write(data)


def start_initiator():
    # open-iscsi keeps its node records under /etc/iscsi (nodes,
    # send_targets) and its locks under /run/lock/iscsi.
    _writable('/etc/iscsi')
    os.makedirs('/run/lock/iscsi', exist_ok=True)
    with open('/etc/iscsi/initiatorname.iscsi', 'w') as f:
        f.write('InitiatorName=%s\n' % INITIATOR_IQN)
    # Its own session: on SIGTERM iscsid signals its whole process group.
    return subprocess.Popen(['iscsid', '-f'], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_target(device):
    if not os.path.isdir('/sys/kernel/config/target'):
        subprocess.run(['mount', '-t', 'configfs', 'configfs',
                        '/sys/kernel/config'], check=True)
    import rtslib_fb
    import rtslib_fb.root
    # rtslib points the kernel's dbroot at /etc/rtslib-fb-target, which
    # must exist: the root file system is read-only, /run is not.
    dbroot = '/run/rtslib-fb-target'
    os.makedirs(dbroot, exist_ok=True)
    rtslib_fb.root.RTSRoot._preferred_dbroot = dbroot
    so = rtslib_fb.BlockStorageObject('fborigin', dev=device)
    target = rtslib_fb.Target(rtslib_fb.FabricModule('iscsi'), TARGET_IQN)
    tpg = rtslib_fb.TPG(target, 1)
    lun = rtslib_fb.LUN(tpg, 0, so)
    rtslib_fb.NetworkPortal(tpg, '127.0.0.1', 3260)
    acl = rtslib_fb.NodeACL(tpg, INITIATOR_IQN)
    acl.chap_userid = CHAP_USER
    acl.chap_password = CHAP_PASSWORD
    rtslib_fb.MappedLUN(acl, 0, lun)
    # LUN 1, a small RAM disk: attached while the origin is away, it takes
    # the origin's /dev/sdX name, as another disk could after a reboot.
    decoy = rtslib_fb.RDMCPStorageObject('fbdecoy', size=1 << 20)
    rtslib_fb.MappedLUN(acl, 1, rtslib_fb.LUN(tpg, 1, decoy))
    tpg.set_attribute('authentication', '1')
    tpg.set_attribute('generate_node_acls', '0')
    tpg.enable = True
    return target, (so, decoy)


def stop_target(target, storage_objects):
    target.delete()
    for so in storage_objects:
        so.delete()


def sessions():
    p = subprocess.run(['iscsiadm', '-m', 'session'], capture_output=True,
                       text=True)
    return [line for line in p.stdout.splitlines() if line.strip()]


def nodes():
    p = subprocess.run(['iscsiadm', '-m', 'node'], capture_output=True,
                       text=True)
    return [line for line in p.stdout.splitlines() if line.strip()]


def scsi_disks():
    return sorted(n for n in os.listdir('/sys/block') if n.startswith('sd'))


def props(password=CHAP_PASSWORD, lun=0):
    return {'target_portal': PORTAL, 'target_iqn': TARGET_IQN,
            'target_lun': lun, 'auth_method': 'CHAP',
            'auth_username': CHAP_USER, 'auth_password': password,
            'target_discovered': False, 'encrypted': False}


def setup_os_brick():
    import os_brick.privileged
    os_brick.privileged.default.set_client_mode(False)


def scenario_brick(run, args):
    from fastboot_nova import exception
    from fastboot_nova.storage.dm import brick

    guest_export.loopback_up()
    # Every log record of this run, os-brick's DEBUG ones included: the
    # CHAP password must be in none of them.
    logbuf = io.StringIO()
    handler = logging.StreamHandler(logbuf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter('%(name)s %(message)s'))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)
    setup_os_brick()
    iscsid = start_initiator()
    target, so = start_target(args['origin'])
    run.step('target_and_initiator')
    os.makedirs(STATE, exist_ok=True)
    eng = guest_export.make_engine(STATE, args['cache'])
    att = brick.OriginAttachments(STATE, identity=eng.devices.identity)
    try:
        _scenario(run, args, eng, att, brick, exception)
    finally:
        logging.getLogger().removeHandler(handler)
        text = logbuf.getvalue()
        run.check('password_never_logged',
                  CHAP_PASSWORD not in text and WRONG_PASSWORD not in text,
                  '%d bytes of logs' % len(text))
        run.check('os_brick_logged', 'os_brick' in text, len(text))
        run.info['log_tail'] = text[-3000:]
        stop_target(target, so)
        iscsid.terminate()
        iscsid.wait(10)


def _scenario(run, args, eng, att, brick, exception):
    # -- refused before anything runs ------------------------------------
    try:
        brick.parse_connection_info({'driver_volume_type': 'fibre_channel',
                                     'data': props()})
        run.check('unknown_protocol_refused', False, 'accepted')
    except brick.UnsupportedProtocol as e:
        run.check('unknown_protocol_refused', True, e.msg)
    try:
        brick.parse_connection_info({'driver_volume_type': 'iscsi',
                                     'data': dict(props(),
                                                  target_iqn='x;reboot')})
        run.check('metachar_refused', False, 'accepted')
    except brick.InvalidConnectionInfo as e:
        run.check('metachar_refused', True, e.msg)
    run.check('refused_nothing_ran', not sessions() and not nodes() and
              not att.list(), (sessions(), nodes()))
    run.step('refused')

    # -- wrong CHAP password ---------------------------------------------
    t = time.monotonic()
    try:
        brick.add_image(eng, att, 'img', 'ISCSI', props(WRONG_PASSWORD))
        run.check('wrong_chap_refused', False, 'attached')
    except brick.OriginAttachFailed as e:
        run.check('wrong_chap_refused', True, e.msg)
        run.check('wrong_chap_message_masked', WRONG_PASSWORD not in e.msg,
                  e.msg)
    run.info['wrong_chap_seconds'] = round(time.monotonic() - t, 1)
    run.check('wrong_chap_nothing_left',
              not sessions() and not nodes() and not att.list() and
              not eng.list_images() and not scsi_disks(),
              (sessions(), nodes(), att.list(), scsi_disks()))
    run.step('wrong_chap')

    # -- attach with CHAP, cache, a VM -------------------------------------
    t = time.monotonic()
    image = brick.add_image(eng, att, 'img', 'ISCSI', props())
    run.info['attach_seconds'] = round(time.monotonic() - t, 1)
    path = att.get('img')['path']
    run.info['path'] = path
    run.check('attached_scsi_disk', path.startswith('/dev/sd') and
              len(sessions()) == 1, (path, sessions()))
    run.check('origin_over_iscsi', gr.sha256_of(path) == args['sha'])
    run.check('image_location', image.location == path, image.location)
    # The engine's origin identity: size and the LUN's WWID from sysfs.
    identity = att.get('img')['identity']
    run.info['identity'] = identity
    run.check('identity_has_wwid', identity.split(':', 1)[1] != '' and
              identity == eng.state.read()['images']['img']['origin_id'],
              identity)
    st = os.stat(att.path)
    run.check('record_mode_0600', st.st_mode & 0o777 == 0o600,
              oct(st.st_mode))
    with open(att.path) as f:
        record = json.load(f)['origins']['img']
    run.check('record_has_secret',
              record['properties']['auth_password'] == CHAP_PASSWORD)
    run.check('list_masks_secret',
              att.list()['img']['properties']['auth_password'] == '***')
    with open(os.path.join(STATE, 'state.json')) as f:
        run.check('engine_state_has_no_secret',
                  CHAP_PASSWORD not in f.read())
    run.step('attach')
    disk = eng.create('vm1', 'img', path)
    run.check('vm_reads_origin', gr.sha256_of(disk.path) == args['sha'])
    run.step('vm')

    # -- as after a reboot: devices and the session gone -----------------
    eng.deactivate()
    brick.detach('ISCSI', record['properties'], record['device_info'],
                 connector=brick.make_connector('ISCSI'))
    run.check('session_gone', not sessions() and not scsi_disks(),
              (sessions(), scsi_disks()))
    decoy_conn = brick.make_connector('ISCSI')
    decoy = brick.attach('ISCSI', props(lun=1), connector=decoy_conn)
    run.info['decoy_path'] = decoy['path']
    report, restored, failed = brick.reconcile(eng, att)
    run.check('reconcile_reattached', restored == ['img'] and not failed and
              len(sessions()) == 1, (restored, failed, sessions()))
    new_path = att.get('img')['path']
    run.info['path_after_restore'] = new_path
    run.check('engine_follows_path', new_path != path and
              eng.state.read()['images']['img']['location'] == new_path,
              (path, decoy['path'], new_path))
    run.check('restored_report', 'vm1' in report.restored_vms and
              'img' in report.restored_images, str(report))
    run.check('vm_reads_origin_after_restore',
              gr.sha256_of(disk.path) == args['sha'])
    # Once more with everything live (a restarted CLI, no reboot): the
    # live session is reused, nothing moves.
    report, restored, failed = brick.reconcile(eng, att)
    run.check('reconcile_again_noop', restored == ['img'] and report.clean
              and att.get('img')['path'] == new_path and
              len(sessions()) == 1, (str(report), sessions()))
    brick.detach('ISCSI', props(lun=1), decoy, connector=decoy_conn)
    run.check('decoy_detached_session_kept', len(sessions()) == 1 and
              scsi_disks() == [os.path.basename(new_path)],
              (sessions(), scsi_disks()))
    run.step('restore')

    # -- remove: no session, no node record, no dm device ----------------
    eng.destroy('vm1')
    brick.remove_image(eng, att, 'img')
    run.check('detach_no_session', not sessions() and not nodes(),
              (sessions(), nodes()))
    run.check('detach_no_disk', not scsi_disks(), scsi_disks())
    run.check('detach_no_record', not att.list(), att.list())
    run.check('no_dm_devices_left', not gr.ours(eng.prefix),
              gr.ours(eng.prefix))
    try:
        brick.remove_image(eng, att, 'img')
        run.check('remove_twice_refused', False, 'removed')
    except exception.ImageNotFound as e:
        run.check('remove_twice_refused', True, e.msg)
    run.step('remove')
