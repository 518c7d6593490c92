"""The coordinator on a real tooz backend: Redis.

Everywhere else tooz runs on its ``file://`` driver, fit only for replicas
on one machine; production shares a network backend. Runs when
FASTBOOT_REDIS_URL is set (``tox -e functional-redis`` starts a private
redis-server with ``tools/start-redis.sh`` and sets it); skips otherwise,
or fails when FASTBOOT_REQUIRE_REDIS=1 (set by that tox environment, so a
CI job that lost its server does not pass by skipping).

Each test uses its own tooz namespace (``?namespace=``), so tests and runs
sharing one Redis do not see each other's locks or members.
"""

import os
import threading
import uuid

from oslotest import base as oslotest_base

from fastboot_nova.coordinator import locks
from fastboot_nova.coordinator import service
from tests.functional.coordinator import base
from tests.functional.coordinator import test_processes
from tests.functional.coordinator import test_replicas

URL_ENV = 'FASTBOOT_REDIS_URL'
REQUIRE_ENV = 'FASTBOOT_REQUIRE_REDIS'


def redis_url(testcase):
    """A tooz URL on the test Redis in a fresh namespace, or skip."""
    url = os.environ.get(URL_ENV)
    if not url:
        howto = ('set %s to a Redis URL such as redis://127.0.0.1:16379, as '
                 'printed by `bash tools/start-redis.sh` (as root), or run '
                 '`tox -e functional-redis`' % URL_ENV)
        if os.environ.get(REQUIRE_ENV) == '1':
            testcase.fail('%s=1 but %s is unset: %s' % (REQUIRE_ENV, URL_ENV,
                                                        howto))
        testcase.skipTest('Redis tests: ' + howto)
    sep = '&' if '?' in url else '?'
    return '%s%snamespace=fastboot-test-%s' % (url, sep, uuid.uuid4().hex)


class Redis:
    """In-process coordinator tests with ``backend_url`` on Redis."""

    def make_conf(self, **overrides):
        if not hasattr(self, 'redis_url'):
            self.redis_url = redis_url(self)
        overrides.setdefault('coordinator.backend_url', self.redis_url)
        return super().make_conf(**overrides)


class TestRestartAndReplicasRedis(Redis, test_replicas.TestRestartAndReplicas):
    """Two in-process replicas serialise tree changes through Redis."""


class TestReplicaProcessesRedis(test_processes.TestReplicaProcesses):
    """Two fastboot-coordinator processes (uWSGI) sharing Redis.

    A kill of one mid-traffic, a host failing over, concurrent joins, the
    lock held from outside blocking both.
    """

    def tooz_backend_url(self):
        return redis_url(self)


class TestCoordinationOnRedis(oslotest_base.BaseTestCase):
    """locks.Coordination itself on Redis: membership and locks."""

    def setUp(self):
        super().setUp()
        self.url = redis_url(self)
        self.conf = base.make_conf('/nonexistent',
                                   **{'coordinator.backend_url': self.url,
                                      'coordinator.lock_timeout': 2})

    def replica(self, membership=True):
        c = locks.Coordination(self.conf, membership=membership)
        c.start()
        self.addCleanup(c.stop)
        return c

    def test_replicas_see_each_other_and_a_stopped_one_leaves(self):
        one, two = self.replica(), self.replica()
        members = sorted([one.member_id.decode(), two.member_id.decode()])
        self.assertEqual(members, one.replicas())
        self.assertEqual(members, two.replicas())
        two.stop()
        self.assertEqual([one.member_id.decode()], one.replicas())

    def test_a_held_lock_times_out_the_other_replica(self):
        one, two = self.replica(False), self.replica(False)
        name = service.lock_name('vol1')
        entered = threading.Event()
        release = threading.Event()

        def hold():
            with one.lock(name):
                entered.set()
                release.wait(30)
        holder = threading.Thread(target=hold)
        holder.start()
        self.addCleanup(holder.join, 30)
        self.addCleanup(release.set)
        self.assertTrue(entered.wait(30))
        self.assertRaises(locks.exception.LockTimeout,
                          two.lock(name).__enter__)
        release.set()
        holder.join(30)
        with two.lock(name):
            pass

    def test_try_lock_skips_a_batch_another_runner_holds(self):
        one, two = self.replica(False), self.replica(False)
        with one.try_lock('batch-1') as mine:
            self.assertTrue(mine)
            with two.try_lock('batch-1') as theirs:
                self.assertFalse(theirs)
        with two.try_lock('batch-1') as theirs:
            self.assertTrue(theirs)

    def test_an_unreachable_backend_is_a_clear_error(self):
        conf = base.make_conf('/nonexistent', **{
            'coordinator.backend_url': 'redis://127.0.0.1:9?timeout=2'})
        c = locks.Coordination(conf, membership=False)
        self.addCleanup(c.stop)
        self.assertRaises(locks.exception.CoordinationUnavailable,
                          c.start)
