"""Cache group commands: ``prefetch``, ``image add|list|remove|reparent``."""

import json
import os

from cliff import command
from cliff import lister
from cliff import show

from fastboot_nova.cmd.commands import common
from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.storage import rbd

IMAGE_COLUMNS = ('name', 'location', 'virtual_size', 'cached_bytes',
                 'export_url', 'vms', 'parents')
MiB = 1024 * 1024


class ProgressPrinter:
    """``progress(done, total)`` callback that reports on a stream.

    On a terminal one line is rewritten in place; elsewhere (CI logs) a
    line is printed at each tenth of the way.
    """

    def __init__(self, stream, label):
        self.stream = stream
        self.label = label
        self.tty = hasattr(stream, 'isatty') and stream.isatty()
        self.last_step = -1
        self.printed = False

    def __call__(self, done, total):
        percent = 100 * done // total if total else 100
        line = '%s: %.1f / %.1f MiB (%d%%)' % (self.label, done / MiB,
                                                total / MiB, percent)
        if self.tty:
            self.stream.write('\r' + line)
        elif percent // 10 > self.last_step:
            self.last_step = percent // 10
            self.stream.write(line + '\n')
        else:
            return
        self.printed = True
        self.stream.flush()

    def finish(self):
        if self.tty and self.printed:
            self.stream.write('\n')
            self.stream.flush()


def origin_attachments(engine):
    """The os-brick origin records of ``engine``, or None (qemu backend)."""
    if not engine.supports('attached_origins'):
        return None
    from fastboot_nova.storage.dm import brick
    return brick.OriginAttachments(engine.state_path,
                                   identity=engine.devices.identity)


def rbd_location(conf, engine, path):
    """The ``rbd://`` location of the connection_info in file ``path``.

    The qemu backend reads an RBD volume in userspace; any other
    ``driver_volume_type`` needs the dm backend (os-brick attachments).
    """
    from fastboot_nova.storage.dm import brick
    try:
        info = json.loads(fileutils.read_bounded(
            path, brick.MAX_CONNECTION_INFO_BYTES))
    except OSError as e:
        raise brick.InvalidConnectionInfo(reason='cannot read %s: %s' % (
            path, e.strerror))
    except exception.FastbootException as e:
        raise brick.InvalidConnectionInfo(reason=e.msg)
    except ValueError as e:
        raise brick.InvalidConnectionInfo(reason='%s is not JSON: %s' % (
            path, e))
    if not rbd.is_rbd(info if isinstance(info, dict) else None):
        raise exception.FastbootException(
            '--connection-info with [fastboot] backend = qemu takes an rbd '
            'volume only; other volume types need [fastboot] backend = dm')
    return rbd.location_from_connection_info(
        info, conf=conf.fastboot_qemu.rbd_ceph_conf,
        key_dir=os.path.join(engine.state_path, rbd.KEY_DIR))


class AddImage(show.ShowOne):
    """Cache an image on this host without creating a VM.

    With ``fastboot prefetch`` afterwards, this warms a host before a boot
    storm. Adding an image that is already cached from the same location
    changes nothing.

    With ``--connection-info FILE`` the origin is a Cinder volume: FILE is
    a Cinder ``connection_info`` JSON object (``driver_volume_type`` and
    ``data``). With the dm backend it is attached through os-brick
    (iSCSI, NVMe-oF, RBD or local); the attachment is recorded (secrets in
    a 0600 file under the state path): ``image remove`` detaches it and
    ``reconcile`` attaches it again after a reboot. With the qemu backend
    an RBD volume is read through librbd (``rbd://`` location, see
    ``[fastboot_qemu] rbd_ceph_conf``); nothing is attached.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image.')
        parser.add_argument('location', metavar='LOCATION', nargs='?',
                            type=common.origin_location,
                            help='Origin: a local file or block device, an '
                                 'NBD URL, or rbd://POOL/IMAGE?conf=PATH'
                                 '[&user=ID][&mon=HOST:PORT].')
        parser.add_argument('--connection-info', metavar='FILE',
                            help='The origin is the volume of this Cinder '
                                 'connection_info JSON file (dm backend: '
                                 'attached through os-brick; qemu backend: '
                                 'rbd volumes) instead of LOCATION.')
        return parser

    def take_action(self, parsed_args):
        if (parsed_args.location is None) == \
                (parsed_args.connection_info is None):
            raise exception.FastbootException(
                'give exactly one of LOCATION and --connection-info')
        engine = self.app.get_engine()
        if parsed_args.connection_info is None:
            return common.show(engine.add_image(parsed_args.image,
                                                parsed_args.location))
        attachments = origin_attachments(engine)
        if attachments is None:
            # qemu backend: an RBD volume is read through librbd.
            location = rbd_location(self.app.get_conf(), engine,
                                    parsed_args.connection_info)
            return common.show(engine.add_image(parsed_args.image,
                                                location))
        from fastboot_nova.storage.dm import brick
        # The file is checked (protocol first) before anything runs.
        protocol, props = brick.load_connection_info(
            parsed_args.connection_info)
        return common.show(brick.add_image(engine, attachments,
                                           parsed_args.image, protocol,
                                           props))


class PrefetchImage(show.ShowOne):
    """Fill an image's host cache completely from its origin.

    Run it before a boot storm so that no boot waits on the origin.
    Progress is reported on standard error.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of a cached image.')
        return parser

    def take_action(self, parsed_args):
        engine = common.engine_for(self.app, 'prefetch', 'prefetch')
        progress = ProgressPrinter(self.app.stderr,
                                   'prefetch %s' % parsed_args.image)
        try:
            image = engine.prefetch(parsed_args.image, progress=progress)
        finally:
            progress.finish()
        return common.show(image)


class ListImages(lister.Lister):
    """List the images of this host's cache group."""

    def take_action(self, parsed_args):
        images = self.app.get_engine().list_images()
        return IMAGE_COLUMNS, common.rows(images, IMAGE_COLUMNS)


class RemoveImage(command.Command):
    """Drop an image from the cache group (refused while VMs use it).

    An origin attached with ``image add --connection-info`` is detached.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image to drop.')
        return parser

    def take_action(self, parsed_args):
        engine = self.app.get_engine()
        attachments = origin_attachments(engine)
        if attachments is None:
            engine.remove_image(parsed_args.image)
            return
        # An os-brick origin is detached after its cache is removed.
        from fastboot_nova.storage.dm import brick
        brick.remove_image(engine, attachments, parsed_args.image)


class ReparentImage(show.ShowOne):
    """Read an image's missing blocks from another source, live.

    The source is a parent host's export of the same image (``fastboot
    image list`` on that host shows it) or the origin itself. Running VMs
    keep running; nothing already cached is fetched again.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of a cached image.')
        parser.add_argument('location', metavar='LOCATION',
                            type=common.origin_location,
                            help='NBD URL of the parent export, or the '
                                 'origin location.')
        parser.add_argument('--alternate', metavar='URL', action='append',
                            default=[], type=common.origin_location,
                            help='Source to read from when the ones before '
                                 'fail; can be repeated. The origin is '
                                 'always the last source.')
        return parser

    def take_action(self, parsed_args):
        engine = self.app.get_engine()
        engine.reparent(parsed_args.image, parsed_args.location,
                        parsed_args.alternate)
        return common.show(engine.get_image(parsed_args.image))
