"""VM disk commands.

``create``, ``destroy``, ``snapshot``, ``clone``, ``migrate``, ``list``.
"""

import logging

from cliff import command
from cliff import lister
from cliff import show

from fastboot_nova.cmd.commands import common

LOG = logging.getLogger(__name__)

VM_COLUMNS = ('name', 'image', 'path', 'written_bytes')


class CreateVm(show.ShowOne):
    """Give a VM a private copy-on-write disk over a cached image.

    The first VM of an image on this host adds the image to the host cache
    group (fetched lazily from LOCATION); later VMs share that cache.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('vm', metavar='VM', type=common.name_type('VM'),
                            help='Name of the new VM disk.')
        parser.add_argument('image', metavar='IMAGE',
                            type=common.name_type('image'),
                            help='Name of the image in the cache group.')
        parser.add_argument(
            'location', metavar='LOCATION', type=common.origin_location,
            help='Origin of the image: a local file or block device, '
                 'nbd://HOST[:PORT]/EXPORT or '
                 'nbd+unix:///EXPORT?socket=/PATH.')
        return parser

    def take_action(self, parsed_args):
        engine = self.app.get_engine()
        agent = self.app.get_agent()
        if agent is not None:
            # Join the image's tree first, so the VM's first reads already
            # come from a parent host and not from the origin.
            agent.attach(parsed_args.image, parsed_args.location)
        disk = engine.create(
            parsed_args.vm, parsed_args.image, parsed_args.location)
        return common.show(disk)


class DestroyVm(command.Command):
    """Delete a VM's disk; the image stays cached for the next VM."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('vm', metavar='VM', type=common.name_type('VM'),
                            help='Name of the VM disk to delete.')
        return parser

    def take_action(self, parsed_args):
        self.app.get_engine().destroy(parsed_args.vm)


class SnapshotVm(show.ShowOne):
    """Save a VM's disk as the image file LOCATION/NAME.qcow2.

    The file keeps only the VM's own blocks and reads the rest from the
    image's origin, so it can be used on any host that reaches the origin.
    The VM must not be running.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('vm', metavar='VM', type=common.name_type('VM'),
                            help='Name of the VM disk to save.')
        parser.add_argument('name', metavar='NAME',
                            type=common.name_type('snapshot'),
                            help='Name of the snapshot file (without '
                                 '.qcow2).')
        parser.add_argument('location', metavar='LOCATION',
                            type=common.existing_directory,
                            help='Existing directory to write it in.')
        return parser

    def take_action(self, parsed_args):
        engine = common.engine_for(self.app, 'snapshot', 'snapshot')
        path = engine.snapshot(parsed_args.vm, parsed_args.name,
                               parsed_args.location)
        return ('vm', 'name', 'path'), (parsed_args.vm, parsed_args.name,
                                        path)


class CloneVm(show.ShowOne):
    """Make VM DEST with a copy of VM's disk, on the same cached image."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('vm', metavar='VM', type=common.name_type('VM'),
                            help='Name of the VM disk to copy.')
        parser.add_argument('destination', metavar='DEST',
                            type=common.name_type('VM'),
                            help='Name of the new VM disk.')
        return parser

    def take_action(self, parsed_args):
        disk = self.app.get_engine().clone(parsed_args.vm,
                                           parsed_args.destination)
        return common.show(disk)


class MigrateVm(show.ShowOne):
    """Move a VM's disk to another engine on this machine.

    DEST is the state path (an existing directory) of the other engine,
    for example another emulated host of ``fastboot demo``. The disk is
    re-pointed at that engine's cache of the same image; the VM must not
    be running.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('vm', metavar='VM', type=common.name_type('VM'),
                            help='Name of the VM disk to move.')
        parser.add_argument('destination', metavar='DEST',
                            type=common.existing_directory,
                            help='State path of the destination engine.')
        return parser

    def take_action(self, parsed_args):
        engine = common.engine_for(self.app, 'migrate', 'migrate')
        disk = engine.migrate(parsed_args.vm, parsed_args.destination)
        return common.show(disk, {'state_path': parsed_args.destination})


class ListVms(lister.Lister):
    """List the VM disks of this host."""

    def take_action(self, parsed_args):
        disks = self.app.get_engine().list()
        return VM_COLUMNS, common.rows(disks, VM_COLUMNS)
