"""Cache group commands: ``prefetch``, ``image add|list|remove|reparent``."""

from cliff import command
from cliff import lister
from cliff import show

from fastboot_nova.cmd.commands import common
from fastboot_nova import exception

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


class AddImage(show.ShowOne):
    """Cache an image on this host without creating a VM.

    With ``fastboot prefetch`` afterwards, this warms a host before a boot
    storm. Adding an image that is already cached from the same location
    changes nothing.

    With ``--connection-info FILE`` (dm backend) the origin is a volume
    attached through os-brick (iSCSI, NVMe-oF, RBD or local): FILE is a
    Cinder ``connection_info`` JSON object (``driver_volume_type`` and
    ``data``). The attachment is recorded (secrets in a 0600 file under
    the state path): ``image remove`` detaches it and ``reconcile``
    attaches it again after a reboot.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image.')
        parser.add_argument('location', metavar='LOCATION', nargs='?',
                            type=common.origin_location,
                            help='Origin: a local file or block device, or '
                                 'an NBD URL.')
        parser.add_argument('--connection-info', metavar='FILE',
                            help='Attach the origin through os-brick from '
                                 'this connection_info JSON file (dm '
                                 'backend) instead of LOCATION.')
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
        from fastboot_nova.storage.dm import brick
        # The file is checked (protocol first) before anything runs.
        protocol, props = brick.load_connection_info(
            parsed_args.connection_info)
        attachments = origin_attachments(engine)
        if attachments is None:
            raise exception.FastbootException(
                '--connection-info needs [fastboot] backend = dm')
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
