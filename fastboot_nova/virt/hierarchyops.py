"""nova-compute as a member of the coordinator's trees.

nova-compute opens no database. Which volume is cached on which host is
recorded by the coordinator when ``[fastboot] coordinator_url`` is set,
and in the engine's state file and the block device's ``connection_info``
otherwise (then nothing here runs).

With a coordinator the compute host does what ``fastboot agent`` does for
a standalone host, with the same :class:`HostAgent` and the same host token
file in the engine's state path:

``init_host``
    register (named ``[fastboot] host_name``, else Nova's ``host``), join
    the tree of every cache the engine holds (what really exists, not what
    was remembered), and start the agent's heartbeat/follow loop in a
    daemon thread (a green thread under eventlet);
first cache of a volume on the host
    join its tree before any server reads, so the cache reads from the
    parent the coordinator gives;
``cleanup_host``
    stop the loop.

A coordinator that does not answer never fails a spawn: the cache reads
from the origin, a warning is logged, and the loop joins when it is back.
"""

import threading

from oslo_log import log as logging

from fastboot_nova.hierarchy import client as client_mod
from fastboot_nova.hierarchy import host as host_mod

LOG = logging.getLogger(__name__)

#: Seconds ``stop`` waits for the loop, on top of one round's requests.
STOP_GRACE = 5.0


class HierarchyOps:
    """The compute host's agent and its background loop."""

    def __init__(self, conf, cacheops, make_agent=host_mod.make_agent):
        self._conf = conf
        self._cacheops = cacheops
        self._make_agent = make_agent
        self.agent = None
        self._stop = threading.Event()
        self._thread = None

    @property
    def enabled(self):
        return bool(self._conf.fastboot.coordinator_url and
                    self._cacheops.enabled)

    def start(self, host):
        """Register, re-join the existing caches, start the loop.

        :param host: Nova's name of this compute host.
        :raises FastbootException: the configuration cannot work (no
            ``export_address``, an invalid host name).
        """
        if not self.enabled or self._thread is not None:
            return
        engine = self._cacheops.engine
        agent = self._make_agent(self._conf, engine, host=host)
        try:
            agent.register()
        except client_mod.CoordinatorError as e:
            # The loop registers when the coordinator answers.
            LOG.warning('Coordinator unusable (%s): caches read from their '
                        'origins until it answers', e.msg)
        else:
            for image in engine.list_images():
                agent.join(image.name, image.export_url)
        self.agent = agent
        self._stop.clear()
        self._thread = threading.Thread(
            target=agent.run, args=(self._stop,),
            name='fastboot-agent-%s' % agent.client.host, daemon=True)
        self._thread.start()
        LOG.info('fastboot host %s in the coordinator\'s trees: %d cache(s)',
                 agent.client.host, len(agent.following))

    def stop(self):
        """Stop the loop; the host stays registered, its caches listed."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(self.agent.client.timeout * 2 + STOP_GRACE)
        if thread.is_alive():
            LOG.warning('fastboot agent loop did not stop in time')

    def attach(self, image, location):
        """Cache ``image`` from ``location`` and join its tree.

        :returns: the CachedImage, or None when there is no agent (the
            engine then caches the image when the disk is made).
        """
        if self.agent is None:
            return None
        cached = self._cacheops.engine.add_image(image, location)
        self.agent.join(image, cached.export_url)
        return cached

    def leave(self, image):
        """Leave the tree of ``image``: its cache is about to go."""
        if self.agent is not None:
            self.agent.leave(image)

    def rejoin(self, image):
        """Follow the tree again: the cache was re-pointed at its origin.

        See CacheOps.prepare, which re-opens the origin of an idle cache.
        """
        if self.agent is not None:
            self.agent.rejoin(image)
