"""Tests of the tree builder: examples, then hypothesis properties."""

import math

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oslotest import base

from fastboot_nova.coordinator import tree

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)

DOMAINS = st.sampled_from([None, 'dc1', 'dc1/r1', 'dc1/r2', 'dc2/r1'])


@st.composite
def members(draw, min_size=0, max_size=40):
    n = draw(st.integers(min_size, max_size))
    return [tree.Member(name='h%03d' % i,
                        failure_domain=draw(DOMAINS),
                        warm=draw(st.booleans()),
                        alive=draw(st.booleans()) if n > 2 else True)
            for i in range(n)]


def check_tree(test, result, members, fanout):
    """The invariants every result must hold."""
    alive = {m.name for m in members if m.alive}
    test.assertEqual(alive, set(result.assignments))
    # Reachable from the origin, no cycle: walking up ends at the origin
    # within ``bound`` steps, and the recorded depth is right.
    for name, a in result.assignments.items():
        node, steps = name, 0
        while node is not None:
            node = result.assignments[node].primary
            steps += 1
            test.assertLessEqual(steps, result.bound)
        test.assertEqual(steps, a.depth)
        test.assertNotEqual(name, a.primary)
    # Fan-out, the origin included, and children agree with parents.
    counted = {}
    for name, a in result.assignments.items():
        counted.setdefault(a.primary, []).append(name)
    for parent, kids in counted.items():
        test.assertLessEqual(len(kids), fanout)
        test.assertEqual(sorted(kids), result.children[parent])
    # Depth bound: a full k-ary tree's depth.
    test.assertEqual(tree.depth_bound(len(alive), fanout), result.bound)
    if alive and fanout > 1:
        test.assertLessEqual(result.bound,
                             math.ceil(math.log(len(alive), fanout)) + 1)
    # Alternates: never self, the primary, a descendant or a dead host.
    # And strictly shallower than the host: every fail-over edge then goes
    # up, as every primary edge does, so no set of fail-overs (two cousins
    # each other's alternate, say) can make reads go round in a cycle.
    for name, a in result.assignments.items():
        for alt in a.alternates:
            if alt is not None:
                test.assertLess(result.assignments[alt].depth, a.depth)
        below = tree.descendants(result, name)
        test.assertEqual(len(a.alternates), len(set(a.alternates)))
        for alt in a.alternates:
            test.assertNotEqual(name, alt)
            test.assertNotEqual(a.primary, alt)
            test.assertNotIn(alt, below)
            if alt is not None:
                test.assertIn(alt, alive)


def primaries(result):
    return {n: a.primary for n, a in result.assignments.items()}


class TestDepthBound(base.BaseTestCase):

    def test_values(self):
        self.assertEqual(0, tree.depth_bound(0, 3))
        self.assertEqual(1, tree.depth_bound(3, 3))
        self.assertEqual(2, tree.depth_bound(4, 3))
        self.assertEqual(2, tree.depth_bound(12, 3))
        self.assertEqual(3, tree.depth_bound(13, 3))
        self.assertEqual(5, tree.depth_bound(5, 1))

    def test_domain_distance(self):
        self.assertEqual(0, tree.domain_distance('dc1/r1', 'dc1/r1'))
        self.assertEqual(1, tree.domain_distance('dc1/r1', 'dc1/r2'))
        self.assertEqual(2, tree.domain_distance('dc1/r1', 'dc2/r1'))
        self.assertEqual(2, tree.domain_distance('dc1/r1', ''))
        self.assertEqual(0, tree.domain_distance('dc1/r1', None))
        self.assertEqual(0, tree.domain_distance(None, 'dc1'))


class TestBuildExamples(base.BaseTestCase):

    def test_empty(self):
        result = tree.build([], fanout=3)
        self.assertEqual({}, result.assignments)
        self.assertEqual({None: []}, result.children)

    def test_few_hosts_read_from_origin(self):
        result = tree.build([tree.Member('a'), tree.Member('b')], fanout=3)
        self.assertEqual({'a': None, 'b': None}, primaries(result))
        self.assertEqual((), result.assignments['a'].alternates[1:])

    def test_fanout_respected_and_depth_minimal(self):
        ms = [tree.Member('h%02d' % i) for i in range(12)]
        result = tree.build(ms, fanout=3)
        check_tree(self, result, ms, 3)
        self.assertEqual(2, max(a.depth for a in result.assignments.values()))

    def test_prefers_same_failure_domain(self):
        ms = [tree.Member('a', 'r1'), tree.Member('b', 'r2')]
        previous = {'a': None, 'b': None}
        ms.append(tree.Member('c', 'r2'))
        result = tree.build(ms, fanout=2, previous=previous)
        self.assertEqual('b', result.parent('c'))

    def test_prefers_warm_parent(self):
        ms = [tree.Member('a'), tree.Member('b', warm=True),
              tree.Member('c')]
        result = tree.build(ms, fanout=2, previous={'a': None, 'b': None})
        self.assertEqual('b', result.parent('c'))

    def test_orphans_go_to_grandparent(self):
        ms = [tree.Member(n) for n in 'abcd']
        previous = {'a': None, 'b': 'a', 'c': 'b', 'd': None}
        dead_b = [m if m.name != 'b' else tree.Member('b', alive=False)
                  for m in ms]
        result = tree.build(dead_b, fanout=2, previous=previous)
        self.assertEqual('a', result.parent('c'))
        self.assertNotIn('b', result.assignments)

    def test_alternates_grandparent_first_then_origin(self):
        ms = [tree.Member(n) for n in 'abcdefg']
        previous = {'a': None, 'b': None, 'c': 'a', 'd': 'c', 'e': 'b',
                    'f': 'b', 'g': 'e'}
        result = tree.build(ms, fanout=2, previous=previous)
        self.assertEqual('c', result.parent('d'))
        alternates = result.assignments['d'].alternates
        self.assertEqual('a', alternates[0])
        self.assertIsNone(alternates[-1])

    def test_previous_cycle_is_broken(self):
        ms = [tree.Member(n) for n in 'abc']
        previous = {'a': 'b', 'b': 'c', 'c': 'a'}
        result = tree.build(ms, fanout=2, previous=previous)
        check_tree(self, result, ms, 2)

    def test_unknown_previous_parent_ignored(self):
        ms = [tree.Member('a')]
        result = tree.build(ms, fanout=2, previous={'a': 'ghost'})
        self.assertIsNone(result.parent('a'))

    def test_bad_fanout(self):
        self.assertRaises(ValueError, tree.build, [], 0)


class TestBuildProperties(base.BaseTestCase):

    @PROPERTY_SETTINGS
    @given(members(), st.integers(1, 5), st.integers(0, 3))
    def test_invariants(self, ms, fanout, alternates):
        result = tree.build(ms, fanout=fanout, alternates=alternates)
        check_tree(self, result, ms, fanout)
        for a in result.assignments.values():
            # ``alternates`` hosts at most, then the origin if not primary.
            hosts = [x for x in a.alternates if x is not None]
            self.assertLessEqual(len(hosts), alternates)

    @PROPERTY_SETTINGS
    @given(members(max_size=30), st.integers(1, 4), st.data())
    def test_adding_a_host_moves_nobody(self, ms, fanout, data):
        first = tree.build(ms, fanout=fanout)
        new = tree.Member('new', failure_domain=data.draw(DOMAINS),
                          warm=data.draw(st.booleans()))
        second = tree.build(ms + [new], fanout=fanout,
                            previous=primaries(first))
        check_tree(self, second, ms + [new], fanout)
        after = primaries(second)
        for name, parent in primaries(first).items():
            self.assertEqual(parent, after[name], name)

    @PROPERTY_SETTINGS
    @given(members(max_size=30), st.integers(1, 4), st.data())
    def test_removals_keep_invariants(self, ms, fanout, data):
        first = tree.build(ms, fanout=fanout)
        names = sorted(first.assignments)
        removed = set(data.draw(st.lists(st.sampled_from(names),
                                         unique=True)) if names else [])
        left = [m for m in ms if m.name not in removed]
        # Removed hosts stay as dead members half the time, so their
        # previous edges still point at them.
        if data.draw(st.booleans()):
            left += [tree.Member(n, alive=False) for n in removed]
        second = tree.build(left, fanout=fanout, previous=primaries(first))
        check_tree(self, second, left, fanout)
        # Rebuilding the same input is a no-op: the tree is a fixed point.
        third = tree.build(left, fanout=fanout, previous=primaries(second))
        self.assertEqual(primaries(second), primaries(third))

    @PROPERTY_SETTINGS
    @given(members(max_size=30), st.integers(1, 4))
    def test_removing_a_leaf_moves_nobody_else(self, ms, fanout):
        first = tree.build(ms, fanout=fanout)
        leaves = [n for n in first.assignments if not first.children[n]]
        if not leaves:
            return
        leaf = leaves[0]
        left = [m for m in ms if m.name != leaf]
        second = tree.build(left, fanout=fanout, previous=primaries(first))
        if second.bound == first.bound:
            expected = {n: p for n, p in primaries(first).items()
                        if n != leaf}
            self.assertEqual(expected, primaries(second))

    @PROPERTY_SETTINGS
    @given(st.dictionaries(st.sampled_from(['a', 'b', 'c', 'd', 'e']),
                           st.sampled_from([None, 'a', 'b', 'c', 'd', 'e',
                                            'x'])),
           st.integers(1, 3))
    def test_any_previous_map_gives_a_tree(self, previous, fanout):
        ms = [tree.Member(n) for n in 'abcde']
        result = tree.build(ms, fanout=fanout, previous=previous)
        check_tree(self, result, ms, fanout)
