"""Cache group commands: ``prefetch``, ``image add|list|remove|reparent``."""

from cliff import command
from cliff import lister
from cliff import show

from fastboot_nova.cmd.commands import common

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


class AddImage(show.ShowOne):
    """Cache an image on this host without creating a VM.

    With ``fastboot prefetch`` afterwards, this warms a host before a boot
    storm. Adding an image that is already cached from the same location
    changes nothing.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image.')
        parser.add_argument('location', metavar='LOCATION',
                            type=common.origin_location,
                            help='Origin: a local file or block device, or '
                                 'an NBD URL.')
        return parser

    def take_action(self, parsed_args):
        return common.show(self.app.get_engine().add_image(
            parsed_args.image, parsed_args.location))


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
        progress = ProgressPrinter(self.app.stderr,
                                   'prefetch %s' % parsed_args.image)
        try:
            image = self.app.get_engine().prefetch(parsed_args.image,
                                                   progress=progress)
        finally:
            progress.finish()
        return common.show(image)


class ListImages(lister.Lister):
    """List the images of this host's cache group."""

    def take_action(self, parsed_args):
        images = self.app.get_engine().list_images()
        return IMAGE_COLUMNS, common.rows(images, IMAGE_COLUMNS)


class RemoveImage(command.Command):
    """Drop an image from the cache group (refused while VMs use it)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image to drop.')
        return parser

    def take_action(self, parsed_args):
        self.app.get_engine().remove_image(parsed_args.image)


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
        image = next(i for i in engine.list_images()
                     if i.name == parsed_args.image)
        return common.show(image)
