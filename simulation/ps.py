"""A processor-sharing server for simpy: links and CPUs as fluids.

Every job in service progresses at the same rate per unit of weight,
``min(per_unit_cap, capacity / (total weight + background))``, as TCP flows
through one bottleneck link or runnable threads on a few cores roughly do.
``background`` stands for load the model does not simulate (other threads
on a shared machine).

Virtual time makes an arrival or a departure O(log n) whatever the number
of jobs: ``served`` is the work one unit of weight has received since the
start; a job of ``work`` that arrives when it is ``s`` leaves when it
reaches ``s + work``. Only the next departure is ever scheduled.
"""

import heapq
import itertools


class PS:
    def __init__(self, env, capacity, per_unit_cap=None, background=0.0):
        if capacity <= 0:
            raise ValueError('capacity must be positive')
        self.env = env
        self.capacity = float(capacity)
        self.cap = per_unit_cap
        self.background = float(background)
        self.weight = 0.0
        self.served = 0.0
        self.last = env.now
        self.heap = []
        self.seq = itertools.count()
        self.version = 0
        #: Work served, weighted (e.g. bytes sent).
        self.total = 0.0

    def rate(self):
        n = self.weight + self.background
        if n <= 0:
            return 0.0
        r = self.capacity / n
        return min(r, self.cap) if self.cap is not None else r

    def _advance(self):
        now = self.env.now
        if now > self.last and self.weight > 0:
            self.served += (now - self.last) * self.rate()
        self.last = now

    def serve(self, work, weight=1.0):
        """An event that fires when ``work`` (per unit weight) is done."""
        done = self.env.event()
        self.total += work * weight
        if work <= 0:
            done.succeed()
            return done
        self._advance()
        heapq.heappush(self.heap, (self.served + work, next(self.seq),
                                   weight, done))
        self.weight += weight
        self._schedule()
        return done

    def _schedule(self):
        self.version += 1
        if not self.heap:
            return
        delay = max((self.heap[0][0] - self.served) / self.rate(), 0.0)
        version = self.version
        self.env.timeout(delay).callbacks.append(
            lambda _ev: self._wake(version))

    def _wake(self, version):
        if version != self.version:
            return
        self._advance()
        eps = 1e-9 * max(1.0, self.served)
        while self.heap and self.heap[0][0] <= self.served + eps:
            _f, _s, weight, done = heapq.heappop(self.heap)
            self.weight -= weight
            done.succeed()
        if not self.heap:
            self.weight = 0.0
        self._schedule()
