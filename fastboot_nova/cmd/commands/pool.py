"""The dm backend's thin-pool: ``pool show`` and ``pool grow``."""

from cliff import show

from fastboot_nova.cmd.commands import common
from fastboot_nova import exception
from fastboot_nova.i18n import _

#: 16 TiB, the largest thin-pool data device the kernel takes (with
#: the default 64 KiB blocks).
MAX_POOL_MIB = 16 * 1024 * 1024


class NoPool(exception.FastbootException):
    message = _("The %(backend)s backend has no thin-pool: VM writes go "
                "to %(where)s")


def _pool_engine(app):
    engine = app.get_engine()
    if not engine.supports('thin_pool'):
        raise NoPool(backend=app.get_conf().fastboot.backend,
                     where='a qcow2 overlay per VM under the state path')
    return engine


def _show(status):
    if status is None:
        return ('pool',), ('none yet: made with the first VM',)
    keys = tuple(status)
    return keys, tuple(common._column(status[k]) for k in keys)


class ShowPool(show.ShowOne):
    """Show the thin-pool that holds the VMs' writes (dm backend).

    ``low_space`` turns true when free space falls under the low-water
    mark (a tenth of the pool): grow the pool before VM writes fail with
    ENOSPC.
    """

    def take_action(self, parsed_args):
        return _show(_pool_engine(self.app).pool_status())


class GrowPool(show.ShowOne):
    """Grow the thin-pool, live (dm backend).

    Extends the pool's files (fully allocated) and reloads the pool with
    the new size; VMs keep running, and writes that failed with ENOSPC
    work again. A pool cannot shrink.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('size_mib', metavar='SIZE_MIB',
                            type=common.positive_int(1, MAX_POOL_MIB),
                            help='New size of the pool data, in MiB.')
        return parser

    def take_action(self, parsed_args):
        engine = _pool_engine(self.app)
        return _show(engine.grow_pool(parsed_args.size_mib))
