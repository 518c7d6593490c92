"""tooz coordination: locks around tree changes, replica membership.

Every replica of the API shares one database and one tooz backend; a
change to a volume's tree (a report, a removal, a re-parenting) is made
under that volume's tooz lock, so two replicas never interleave their
read-build-write cycles. Liveness of *hosts* is not tooz's job: it comes
from the heartbeat timestamps in the database, which every replica reads
alike.
"""

import contextlib
import logging
import uuid

from tooz import coordination

from fastboot_nova.conf import coordinator as coordinator_conf
from fastboot_nova.coordinator import exception

LOG = logging.getLogger(__name__)

GROUP = b'fastboot-coordinator'


class Coordination:

    def __init__(self, conf, member_id=None, membership=True):
        # Joining the replica group starts tooz's heartbeat thread and
        # executor, whose shutdown takes about a second: tests go without.
        self.membership = membership
        self.url = coordinator_conf.default_backend_url(conf)
        self.lock_timeout = conf.coordinator.lock_timeout
        self.member_id = (member_id or
                          'coordinator-%s' % uuid.uuid4().hex).encode()
        self._coordinator = None

    def start(self):
        try:
            self._coordinator = coordination.get_coordinator(self.url,
                                                             self.member_id)
            self._coordinator.start(start_heart=self.membership)
        except coordination.ToozError as e:
            raise exception.CoordinationUnavailable(reason=str(e))
        if self.membership:
            self._join()
            LOG.info('Joined %s as %s', GROUP.decode(),
                     self.member_id.decode())

    def _join(self):
        try:
            try:
                self._coordinator.create_group(GROUP).get()
            except coordination.GroupAlreadyExist:
                pass
            self._coordinator.join_group(GROUP).get()
        except coordination.MemberAlreadyExist:
            pass
        except (coordination.ToozError, NotImplementedError) as e:
            # Locks matter, membership is informative: keep serving.
            LOG.warning('Could not join the replica group: %s', e)

    def stop(self):
        if self._coordinator is None:
            return
        try:
            self._coordinator.stop()  # leaves the groups it joined
        except coordination.ToozError as e:
            LOG.debug('Stopping tooz failed: %s', e)
        self._coordinator = None

    def replicas(self):
        try:
            return sorted(m.decode() for m in
                          self._coordinator.get_members(GROUP).get())
        except (coordination.ToozError, NotImplementedError):
            return []

    @contextlib.contextmanager
    def lock(self, name):
        """Hold the tooz lock ``name`` or raise LockTimeout."""
        if self._coordinator is None:
            self.start()
        lock = self._coordinator.get_lock(name.encode())
        try:
            acquired = lock.acquire(blocking=self.lock_timeout)
        except coordination.ToozError as e:
            raise exception.CoordinationUnavailable(reason=str(e))
        if not acquired:
            raise exception.LockTimeout(name=name)
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def try_lock(self, name):
        """Hold the tooz lock ``name`` if free: yields True, else False.

        For fastboot-runner, which skips a batch another runner holds.
        """
        if self._coordinator is None:
            self.start()
        lock = self._coordinator.get_lock(name.encode())
        try:
            acquired = lock.acquire(blocking=False)
        except coordination.ToozError as e:
            raise exception.CoordinationUnavailable(reason=str(e))
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
