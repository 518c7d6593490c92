"""Restarts and replicas: state lives in the database and tooz, not memory."""

import threading

from tests.functional.coordinator import base


def parents_of(client, volume, hosts):
    return {h: client.parents(volume, h).json['primary'] for h in hosts}


class TestRestartAndReplicas(base.CoordinatorTestCase):

    def test_restart_loses_nothing(self):
        hosts = ['h%d' % i for i in range(8)]
        for h in hosts:
            self.client.register(h)
            self.client.report(h, 'vol1')
        before = parents_of(self.client, 'vol1', hosts)
        self.app.stop()
        restarted = base.Client(self.make_app())
        restarted.tokens = dict(self.client.tokens)
        self.assertEqual(before, parents_of(restarted, 'vol1', hosts))
        resp = restarted.request('PUT', '/v1/hosts/h3/heartbeat', host='h3')
        self.assertEqual(200, resp.status_int, resp.text)

    def test_two_replicas_agree(self):
        other = base.Client(self.make_app())
        hosts = ['h%02d' % i for i in range(12)]
        for i, h in enumerate(hosts):
            client = self.client if i % 2 else other
            client.register(h, failure_domain='dc1/r%d' % (i % 3))
        other.tokens = self.client.tokens = {**self.client.tokens,
                                             **other.tokens}
        for i, h in enumerate(hosts):
            (other if i % 2 else self.client).report(h, 'vol1')
        one = parents_of(self.client, 'vol1', hosts)
        two = parents_of(other, 'vol1', hosts)
        self.assertEqual(one, two)
        self.assertEqual(self.client.request('GET',
                                             '/v1/volumes/vol1/tree').json,
                         other.request('GET', '/v1/volumes/vol1/tree').json)

    def test_concurrent_reports_on_two_replicas_make_one_tree(self):
        other = base.Client(self.make_app())
        hosts = ['h%02d' % i for i in range(10)]
        for h in hosts:
            self.client.register(h)
        other.tokens = self.client.tokens
        errors = []

        def report(client, names):
            for h in names:
                resp = client.report(h, 'vol1')
                if resp.status_int != 200:
                    errors.append(resp.text)
        threads = [threading.Thread(target=report,
                                    args=(self.client, hosts[::2])),
                   threading.Thread(target=report,
                                    args=(other, hosts[1::2]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual([], errors)
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        self.assertEqual(tree, other.request('GET',
                                             '/v1/volumes/vol1/tree').json)
        counts = {}
        for h in tree['hosts']:
            counts[h['parent']] = counts.get(h['parent'], 0) + 1
            self.assertLessEqual(h['depth'], tree['depth_bound'])
        self.assertLessEqual(max(counts.values()), tree['fanout'])
        self.assertEqual(len(hosts), len(tree['hosts']))

    def test_heartbeats_reports_and_parents_at_once_never_fail(self):
        # What a boot storm looks like to the coordinator: every host
        # heartbeats, reports and asks for parents at the same time. On
        # SQLite this deadlocked on lock upgrades ("database is locked",
        # 500) before transactions began IMMEDIATE.
        hosts = ['h%02d' % i for i in range(8)]
        for h in hosts:
            self.client.register(h)
            self.client.report(h, 'vol1')
        errors = []

        def storm(h):
            for _ in range(15):
                for resp in (
                        self.client.request('PUT',
                                            '/v1/hosts/%s/heartbeat' % h,
                                            host=h),
                        self.client.report(h, 'vol1'),
                        self.client.parents('vol1', h)):
                    if resp.status_int != 200:
                        errors.append((h, resp.status_int, resp.text))
        threads = [threading.Thread(target=storm, args=(h,)) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual([], errors)
