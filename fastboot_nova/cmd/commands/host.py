"""Host commands: ``reconcile`` and ``shutdown``."""

from cliff import command
from cliff import show

from fastboot_nova.cmd.commands import common
from fastboot_nova.cmd.commands import image


class Reconcile(show.ShowOne):
    """Make what runs match the state file, and report what differed.

    Restarts the storage daemon if needed, restores cache exports, removes
    orphan daemon nodes, caches and temporary files. VM disk files that no
    state entry refers to are reported, never deleted. With the dm
    backend, origins attached through os-brick are attached again first.
    """

    def take_action(self, parsed_args):
        engine = self.app.get_engine()
        attachments = image.origin_attachments(engine)
        if attachments is None:
            report = engine.reconcile()
        else:
            # os-brick origins first: the engine rebuilds caches on them.
            from fastboot_nova.storage.dm import brick
            report, _restored, _failed = brick.reconcile(engine,
                                                         attachments)
        columns, values = common.show(report)
        return columns + ('clean',), values + (report.clean,)


class Shutdown(command.Command):
    """Stop this host's storage daemon.

    VM disks, caches and the state file stay on disk; the next command
    that needs the daemon starts it again. VMs using their disks lose I/O
    until then: stop them first.
    """

    def take_action(self, parsed_args):
        self.app.get_engine().shutdown()
