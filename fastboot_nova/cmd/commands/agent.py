"""``fastboot agent``: this host's member of the coordinator's trees."""

import signal
import threading

from cliff import command

from fastboot_nova import exception


class Agent(command.Command):
    """Run the host agent until SIGTERM or Ctrl-C.

    It registers the host with the coordinator (``[fastboot]
    coordinator_url``), heartbeats, joins the tree of every image in the
    host's cache group, and re-parents a cache at once when its parent
    stops answering. Needs ``export_address``: child hosts read this
    host's caches there.
    """

    def take_action(self, parsed_args):
        agent = self.app.get_agent()
        if agent is None:
            raise exception.FastbootException(
                'no coordinator: set [fastboot] coordinator_url')
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        agent.register()
        self.app.stderr.write('fastboot agent: host %s registered; '
                              'watching every %.1fs\n' % (
                                  agent.client.host, agent.interval))
        self.app.stderr.flush()
        agent.run(stop)
