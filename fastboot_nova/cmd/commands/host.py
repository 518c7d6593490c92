"""Host commands: ``reconcile`` and ``shutdown``."""

from cliff import command
from cliff import show

from fastboot_nova.cmd.commands import common


class Reconcile(show.ShowOne):
    """Make what runs match the state file, and report what differed.

    Restarts the storage daemon if needed, restores cache exports, removes
    orphan daemon nodes, caches and temporary files. VM disk files that no
    state entry refers to are reported, never deleted.
    """

    def take_action(self, parsed_args):
        report = self.app.get_engine().reconcile()
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
