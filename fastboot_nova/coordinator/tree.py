"""The tree builder: which host reads a volume from which parent.

Pure functions, no database and no clock: the caller gives the hosts that
cache one volume (with their failure domain, warm flag and liveness) and the
previous assignment, and gets back a primary parent and ordered alternates
for every live host. ``None`` stands for the origin, the root of the tree.

The rules, in order of strength:

* it is a tree rooted at the origin: every live host is reachable, no
  cycles, dead hosts are left out;
* nobody (the origin included) has more than ``fanout`` children;
* no host is deeper than :func:`depth_bound` (the depth of a full k-ary
  tree with that many hosts, about ceil(log_k(hosts)));
* it is stable: a host keeps its previous parent whenever that parent is
  still alive and the two rules above still hold, so adding a host moves
  nobody, and removing one moves only what it must. A subtree whose root
  lost its parent moves as a whole when it fits;
* among the free slots, a host prefers, in order: a parent in the same
  failure domain (``/``-separated labels, e.g. ``dc1/rack2``: the longer the
  shared prefix, the nearer), its former grandparent (when its parent
  died), a warm parent (fully prefetched; the origin counts as warm), the
  parent with the fewest children, the shallowest one.

Alternates are strictly shallower than the host (so never the host, nor
its descendants) and never its primary. Every fail-over edge then goes up
the tree like every primary edge does, so no combination of fail-overs can
make reads go round in a cycle (two cousins listing each other would
deadlock: each cache waits on the other's copy-on-read of the same
block). They list up to ``alternates`` hosts (the grandparent first), then
the origin.
"""

import collections
import dataclasses

ORIGIN = None
_NOBODY = object()


@dataclasses.dataclass(frozen=True)
class Member:
    """A host that caches the volume."""

    name: str
    failure_domain: str | None = None
    warm: bool = False
    alive: bool = True


@dataclasses.dataclass(frozen=True)
class Assignment:
    primary: str | None
    alternates: tuple
    depth: int


@dataclasses.dataclass
class Tree:
    """The result of :func:`build`; ``None`` keys mean the origin."""

    assignments: dict
    children: dict
    bound: int

    def parent(self, name):
        return self.assignments[name].primary


def depth_bound(hosts, fanout):
    """Depth of a full ``fanout``-ary tree below the origin with ``hosts``."""
    depth, capacity, level = 0, 0, 1
    while capacity < hosts:
        depth += 1
        level *= fanout
        capacity += level
    return depth


def domain_distance(host_domain, parent_domain):
    """How many of the host's failure-domain labels the parent does not share.

    ``None`` as parent domain stands for the origin, which is near everyone.
    """
    if not host_domain:
        return 0
    mine = host_domain.split('/')
    if parent_domain is ORIGIN:
        return 0
    theirs = parent_domain.split('/') if parent_domain else []
    shared = 0
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            break
        shared += 1
    return len(mine) - shared


class _Builder:

    def __init__(self, members, fanout, previous, alternates):
        if fanout < 1:
            raise ValueError('fanout must be at least 1')
        self.fanout = fanout
        self.n_alternates = alternates
        self.previous = dict(previous or {})
        self.members = {m.name: m for m in members if m.alive}
        self.bound = depth_bound(len(self.members), fanout)
        self.children = {ORIGIN: []}
        self.parent = {}
        self.depth = {ORIGIN: 0}

    # -- the forest of previous edges that may still be kept ---------------

    def _forest(self):
        """Previous edges between live hosts, with cycles broken."""
        fparent = {}
        for name in sorted(self.members):
            prev = self.previous.get(name, '')
            if prev is ORIGIN or (prev in self.members and prev != name):
                fparent[name] = prev
        # A stored assignment cannot hold a cycle, but a bad report or a
        # hand-edited database could: cut each at its smallest name.
        state = {}
        for start in sorted(fparent):
            path = []
            node = start
            while node is not ORIGIN and node in fparent and \
                    state.get(node) is None:
                state[node] = start
                path.append(node)
                node = fparent[node]
            if node is not ORIGIN and node in fparent and \
                    state.get(node) == start:
                cycle = path[path.index(node):]
                del fparent[min(cycle)]
        fchildren = collections.defaultdict(list)
        for child, par in fparent.items():
            fchildren[par].append(child)
        for kids in fchildren.values():
            kids.sort()
        roots = sorted(set(self.members) - set(fparent))
        return fchildren, roots

    def _height(self, root, fchildren):
        height, frontier = 0, fchildren.get(root, [])
        while frontier:
            height += 1
            frontier = [c for f in frontier for c in fchildren.get(f, [])]
        return height

    def _attach(self, node, parent):
        self.parent[node] = parent
        self.children[parent].append(node)
        self.children[node] = []
        self.depth[node] = self.depth[parent] + 1

    def _grow(self, top, fchildren, pending):
        """Keep forest edges below ``top`` while the rules hold."""
        queue = collections.deque([top])
        while queue:
            node = queue.popleft()
            for child in fchildren.pop(node, []):
                if (self.depth[node] + 1 <= self.bound and
                        len(self.children[node]) < self.fanout):
                    self._attach(child, node)
                    queue.append(child)
                else:
                    pending.append(child)

    def _grandparent(self, name):
        """First live ancestor in the previous assignment, past dead ones."""
        seen = {name}
        node = self.previous.get(name, ORIGIN)
        while node is not ORIGIN and node not in self.members:
            if node in seen:
                return ORIGIN
            seen.add(node)
            node = self.previous.get(node, ORIGIN)
        return node

    def _slot_key(self, member, candidate, grandparent):
        if candidate is ORIGIN:
            domain, warm, name = ORIGIN, True, ''
        else:
            other = self.members[candidate]
            domain, warm, name = (other.failure_domain or '', other.warm,
                                  candidate)
        return (domain_distance(member.failure_domain, domain),
                candidate != grandparent,
                not warm,
                len(self.children[candidate]),
                self.depth[candidate],
                name)

    def _best_slot(self, name, height):
        member = self.members[name]
        # A new host has no former grandparent to prefer.
        grandparent = self._grandparent(name) if name in self.previous \
            else _NOBODY
        best, best_key = None, None
        limit = self.bound - 1 - height
        for candidate, kids in self.children.items():
            if len(kids) >= self.fanout or self.depth[candidate] > limit:
                continue
            key = self._slot_key(member, candidate, grandparent)
            if best_key is None or key < best_key:
                best, best_key = candidate, key
        return best_key is not None, best

    def place(self):
        fchildren, roots = self._forest()
        pending = []
        # The origin's previous children first: that keeps what is kept.
        fchildren[ORIGIN] = [r for r in fchildren.get(ORIGIN, [])]
        self._grow(ORIGIN, fchildren, pending)
        pending.extend(r for r in roots)
        while pending:
            # Tall subtrees first, so they get the shallow slots they need;
            # then warm hosts, so they end up high enough to be parents.
            pending.sort(key=lambda r: (-self._height(r, fchildren),
                                        not self.members[r].warm, r))
            name = pending.pop(0)
            height = self._height(name, fchildren)
            found, slot = self._best_slot(name, height)
            if not found:
                # No slot fits the whole subtree: let its children go and
                # find their own places. A single host always fits: while
                # fewer than all hosts are placed, a full tree of depth
                # ``bound`` has a free slot above the last level.
                pending.extend(fchildren.pop(name, []))
                found, slot = self._best_slot(name, 0)
                if not found:
                    raise AssertionError('no slot for %s' % name)
            self._attach(name, slot)
            self._grow(name, fchildren, pending)

    # -- alternates -----------------------------------------------------------

    def _alternates(self, name, ranked):
        primary = self.parent[name]
        result = []
        if primary is not ORIGIN:
            grandparent = self.parent[primary]
            if grandparent is not ORIGIN:
                result.append(grandparent)
        for candidate in ranked(self.members[name].failure_domain):
            if len(result) >= self.n_alternates:
                break
            if (candidate in (name, primary) or candidate in result or
                    self.depth[candidate] >= self.depth[name]):
                continue
            result.append(candidate)
        result = result[:self.n_alternates]
        if primary is not ORIGIN:
            result.append(ORIGIN)
        return tuple(result)

    def _ranker(self):
        """Hosts by preference as alternates, per failure domain."""
        order = sorted(self.parent,
                       key=lambda c: (not self.members[c].warm,
                                      self.depth[c],
                                      len(self.children[c]), c))
        cache = {}

        def ranked(domain):
            if domain not in cache:
                cache[domain] = sorted(
                    order, key=lambda c: domain_distance(
                        domain, self.members[c].failure_domain or ''))
            return cache[domain]
        return ranked

    def result(self):
        ranked = self._ranker()
        assignments = {
            name: Assignment(primary=self.parent[name],
                             alternates=self._alternates(name, ranked),
                             depth=self.depth[name])
            for name in sorted(self.parent)}
        children = {k: sorted(v) for k, v in self.children.items()}
        return Tree(assignments=assignments, children=children,
                    bound=self.bound)


def build(members, fanout=3, previous=None, alternates=2):
    """Assign parents for one volume.

    :param members: iterable of :class:`Member`; dead ones are left out.
    :param fanout: most children per parent, the origin included.
    :param previous: mapping of host name to its previous primary parent
        (``None`` for the origin), dead hosts included: it is what keeps
        the tree stable and gives orphans their grandparent.
    :param alternates: how many alternate hosts to list before the origin.
    :returns: a :class:`Tree`.
    """
    builder = _Builder(members, fanout, previous, alternates)
    builder.place()
    return builder.result()


def descendants(tree, name):
    """All hosts below ``name`` in ``tree``."""
    out, frontier = set(), list(tree.children.get(name, []))
    while frontier:
        node = frontier.pop()
        out.add(node)
        frontier.extend(tree.children.get(node, []))
    return out
