"""The ledger: who holds what on every node.

Free cores and memory, power state, running tasks, idle times and the index
of free resources, kept by one :class:`Ledger` per run.  Only the control
plane writes it (it reserves a task's cores and memory at its start and
gives them back at its end, so no node is ever overcommitted); the policies
read it through :class:`~rpiaas.core.view.ClusterView`'s read-only arrays, the
shells through ``changes`` (the nodes changed, in order) and its plain lists.

Each quantity is kept twice on purpose: as a numpy array (what a policy
reads, vectorised) and as a plain list (what the control plane's hot path
reads, a scalar at a time, without numpy's per-item cost).  While no policy
hook reads the view during a step, a reservation writes the lists alone and
the view brings the arrays up to date when it is read (:meth:`sync_view`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..model import Node, PowerState, Task, part_cores

__all__ = ["FreeCoresIndex", "Ledger"]

_ON = int(PowerState.ON)
_NAN = math.nan


class FreeCoresIndex:
    """Nodes that are on, grouped by free cores and by free memory.

    For each number of free cores ``k`` it keeps the distinct free-memory
    levels present, sorted, and for each level the nodes at it in the order
    they got there; ``present`` lists, sorted, the numbers of free cores that
    some node has.  A search visits only those numbers, from the task's cores
    up (best fit) or from the most down (worst fit), and within one a binary
    search over memory levels: the first number visited answers unless memory
    is short there, whatever the number of nodes and however wide they are.
    Moving a node is O(1) unless it opens or closes a memory level, and
    O(log) more when it empties or fills a number of free cores.
    """

    __slots__ = ("_groups", "_levels", "max_cores", "present")

    def __init__(self, max_cores: int) -> None:
        self.max_cores = max_cores
        self._levels: list[list[int]] = [[] for _ in range(max_cores + 1)]
        self._groups: list[dict[int, dict[int, None]]] = [{} for _ in range(max_cores + 1)]
        #: the numbers of free cores some node that is on has, ascending
        self.present: list[int] = []

    def add(self, node: int, free: int, mem_free_mb: int) -> None:
        groups = self._groups[free]
        group = groups.get(mem_free_mb)
        if group is None:
            if not groups:
                insort(self.present, free)
            group = groups[mem_free_mb] = {}
            insort(self._levels[free], mem_free_mb)
        group[node] = None

    def remove(self, node: int, free: int, mem_free_mb: int) -> None:
        """Take out node ``node``, which has ``free`` free cores and ``mem_free_mb`` free memory."""
        groups = self._groups[free]
        group = groups[mem_free_mb]
        del group[node]
        if not group:
            del groups[mem_free_mb]
            levels = self._levels[free]
            del levels[bisect_left(levels, mem_free_mb)]
            if not groups:
                present = self.present
                del present[bisect_left(present, free)]

    def move(self, node: int, old: int, old_mem: int, new: int, new_mem: int) -> None:
        """Node ``node`` had ``old`` free cores and ``old_mem`` free memory and now has ``new``
        and ``new_mem`` (the caller knows both: the index keeps no copy).

        :meth:`remove` then :meth:`add`, written out: it runs twice per task.
        """
        groups = self._groups[old]
        group = groups[old_mem]
        del group[node]
        if not group:
            del groups[old_mem]
            levels = self._levels[old]
            del levels[bisect_left(levels, old_mem)]
            if not groups:
                present = self.present
                del present[bisect_left(present, old)]
        groups = self._groups[new]
        into = groups.get(new_mem)
        if into is None:
            if not groups:
                insort(self.present, new)
            into = groups[new_mem] = {}
            insort(self._levels[new], new_mem)
        into[node] = None

    def items(self, free_cores: int) -> Iterator[tuple[int, int]]:
        """``(node, mem_free_mb)`` of the nodes with exactly ``free_cores`` free cores,
        by free memory, then by how long they have been at that level."""
        groups = self._groups[free_cores]
        return ((node, mem) for mem in self._levels[free_cores] for node in groups[mem])

    def bucket(self, free_cores: int) -> Iterator[int]:
        """Node indices with exactly ``free_cores`` free cores (in :meth:`items` order)."""
        return (node for node, _ in self.items(free_cores))

    def most_free(self) -> int:
        """The most free cores any node that is on has (-1 if none is on): a task that asks
        for more fits no node."""
        present = self.present
        return present[-1] if present else -1

    def count_from(self, cores: int) -> int:
        """How many nodes that are on have at least ``cores`` free cores (whatever their
        memory): a job of more parts than that cannot start, which this says from the sizes
        of the groups of the numbers of free cores present, without a look at any node."""
        return sum(map(len, self._groups_with_room(cores, 0)))

    def with_room(self, cores: int, mem_mb: int) -> list[int]:
        """The nodes that are on with ``cores`` free cores and ``mem_mb`` free memory, in no
        particular order."""
        out: list[int] = []
        for group in self._groups_with_room(cores, mem_mb):
            out += group
        return out

    def _groups_with_room(self, cores: int, mem_mb: int) -> Iterator[dict[int, None]]:
        """The groups of nodes (each at one level of free cores and memory) with ``cores`` free
        cores and ``mem_mb`` free memory, fewest free cores first, then least free memory."""
        present = self.present
        levels, groups = self._levels, self._groups
        for j in range(bisect_left(present, cores), len(present)):
            free = present[j]
            lv, by_mem = levels[free], groups[free]
            for i in range(bisect_left(lv, mem_mb), len(lv)):
                yield by_mem[lv[i]]

    def tightest(self, cores: int, mem_mb: int) -> int | None:
        """The node left with the fewest free cores, then the least free memory, after
        taking ``cores`` and ``mem_mb``; among equals the one longest at that level.
        ``None`` if no node fits."""
        present = self.present
        if not present or cores > present[-1]:
            return None
        levels, groups = self._levels, self._groups
        j, top = bisect_left(present, cores), len(present)
        while j < top:
            free = present[j]
            lv = levels[free]
            i = bisect_left(lv, mem_mb)
            if i < len(lv):
                return next(iter(groups[free][lv[i]]))
            j += 1
        return None

    def fits(self, cores: int, mem_mb: int) -> bool:
        """Whether some node that is on has ``cores`` free cores and ``mem_mb`` free memory
        (:meth:`tightest` is not ``None``)."""
        present = self.present
        if not present or cores > present[-1]:
            return False
        levels = self._levels
        j, top = bisect_left(present, cores), len(present)
        while j < top:
            if levels[present[j]][-1] >= mem_mb:
                return True
            j += 1
        return False

    def has_room(self, k: int, cores: int, mem_mb: int) -> bool:
        """Whether at least ``k`` nodes that are on have ``cores`` free cores and ``mem_mb``
        free memory (a parallel job of ``k`` such parts could start): the groups of the
        numbers of free cores from ``cores`` up, counted until ``k``."""
        present = self.present
        if not present or cores > present[-1]:
            return k <= 0
        levels, groups = self._levels, self._groups
        n = 0
        for j in range(bisect_left(present, cores), len(present)):
            free = present[j]
            lv, by_mem = levels[free], groups[free]
            for i in range(bisect_left(lv, mem_mb), len(lv)):
                n += len(by_mem[lv[i]])
                if n >= k:
                    return True
        return n >= k

    def loosest(self, cores: int, mem_mb: int) -> int | None:
        """The node left with the most free cores, then the most free memory; among
        equals the one longest at that level.  ``None`` if no node fits."""
        present = self.present
        levels, groups = self._levels, self._groups
        for j in range(len(present) - 1, -1, -1):
            free = present[j]
            if free < cores:
                break
            lv = levels[free]
            if lv[-1] >= mem_mb:
                return next(iter(groups[free][lv[-1]]))
        return None

    def tightest_nodes(self, k: int, cores: int, mem_mb: int) -> tuple[int, ...] | None:
        """A parallel job's ``k`` nodes by :meth:`tightest`: those with ``cores`` free cores
        and ``mem_mb`` free memory, fewest free cores first, then least free memory, then
        lowest index (a job's parts go where it leaves the least room).  ``None`` if fewer
        than ``k`` nodes fit."""
        present = self.present
        if not present or cores > present[-1]:
            return None
        out: list[int] = []
        for group in self._groups_with_room(cores, mem_mb):
            out += sorted(group)
            if len(out) >= k:
                return tuple(out[:k])
        return None

    def loosest_nodes(self, k: int, cores: int, mem_mb: int) -> tuple[int, ...] | None:
        """A parallel job's ``k`` nodes by :meth:`loosest`: those with room, most free cores
        first, then most free memory, then lowest index.  ``None`` if fewer than ``k`` fit."""
        present = self.present
        levels, groups = self._levels, self._groups
        out: list[int] = []
        for j in range(len(present) - 1, -1, -1):
            free = present[j]
            if free < cores:
                break
            lv, by_mem = levels[free], groups[free]
            for i in range(len(lv) - 1, bisect_left(lv, mem_mb) - 1, -1):
                out += sorted(by_mem[lv[i]])
                if len(out) >= k:
                    return tuple(out[:k])
        return None


class Ledger:
    """Every node's free resources, power state and running tasks.

    :param nodes: the cluster's nodes, in index order.
    :param states: every node's :class:`~rpiaas.model.PowerState` at time 0.

    Arrays (indexed by node): ``cores``, ``mem_mb``, ``cores_free``,
    ``mem_free_mb``, ``state``, ``tasks`` (running tasks), ``idle_since_s``
    (``nan`` while busy or not on).  Plain lists ``cores_free_list``,
    ``mem_free_list`` and ``state_list`` mirror ``cores_free``, ``mem_free_mb``
    and ``state``.  ``running`` holds the running tasks by id, ``running_on[n]``
    those of node ``n``; ``index`` the nodes that are on by free resources.
    """

    def __init__(self, nodes: Sequence[Node], states: Sequence[int]) -> None:
        n = len(nodes)
        self.cores = np.array([x.type.cores for x in nodes], dtype=np.int64)
        self.mem_mb = np.array([x.type.mem_mb for x in nodes], dtype=np.int64)
        self.cores_free = self.cores.copy()
        self.mem_free_mb = self.mem_mb.copy()
        self.state = np.full(n, _ON, dtype=np.int64)
        self.tasks = np.zeros(n, dtype=np.int64)
        self.idle_since_s = np.zeros(n, dtype=np.float64)
        # writable memoryviews of the arrays: a scalar write through one costs a
        # third of numpy's ``a[i] = x``, and the arrays see it at once
        self._cores_free_out: Any = memoryview(self.cores_free)
        self._mem_free_out: Any = memoryview(self.mem_free_mb)
        self._tasks_out: Any = memoryview(self.tasks)  # type: ignore[arg-type]
        self._idle_out: Any = memoryview(self.idle_since_s)  # type: ignore[arg-type]
        self.cores_free_list: list[int] = self.cores_free.tolist()
        self.mem_free_list: list[int] = self.mem_free_mb.tolist()
        self.state_list: list[int] = [_ON] * n
        self.not_on = 0  # nodes not on (off, booting or down): none, and no mask needs the state
        self.running: dict[int, Task] = {}
        self.running_on: list[dict[int, Task]] = [{} for _ in range(n)]
        self.index = FreeCoresIndex(int(self.cores.max()) if n else 0)
        # the running tasks as (est_end_s, id, task), ascending: kept from the first time
        # running_by_end() is asked for (None until then: a run that never asks pays nothing)
        self._by_end: list[tuple[float, int, Task]] | None = None
        # ((cores, mem_mb, k), now, answer): room_times()'s last answer, forgotten at any
        # change of a node's reservations (while the order above is kept) or power state
        self._room: tuple[tuple[int, int, int], float, list[tuple[float, int]] | None] | None = None
        self._cap_cores: list[int] = self.cores.tolist()
        self._cap_mem: list[int] = self.mem_mb.tolist()
        # nodes that are on, by capacity (cores, mem_mb): how many could ever hold a task
        self._on_by_capacity: dict[tuple[int, int], int] = {}
        for cap in zip(self._cap_cores, self._cap_mem, strict=True):
            self._on_by_capacity[cap] = self._on_by_capacity.get(cap, 0) + 1
        # whether a reservation writes the arrays at once (else only the lists, the arrays
        # being ``behind`` until sync_view(): the control plane's choice while no hook reads
        # the view during a step; the view catches up when it is read)
        self.arrays_follow = True
        self.behind = False
        # every change of a node's reservations or power state, as (node, time, free cores,
        # power state) after it, until its one reader (the shell's energy integrator) empties it
        self.changes: list[tuple[int, float, int, int]] = []
        for i, st in enumerate(states):
            self.set_state(i, int(st), 0.0)
            if st == _ON:
                self.index.add(i, self.cores_free_list[i], self.mem_free_list[i])
                self.idle_since_s[i] = 0.0
            else:
                self.idle_since_s[i] = _NAN
        self.changes.clear()  # the states at time 0 are no change

    def set_state(self, n: int, state: int, now: float) -> None:
        """Node ``n`` is in power ``state`` from ``now``."""
        old = self.state_list[n]
        if old != state and (old == _ON or state == _ON):
            self.not_on += 1 if old == _ON else -1
            self._on_by_capacity[self._cap_cores[n], self._cap_mem[n]] += -1 if old == _ON else 1
        self.state[n] = state
        self.state_list[n] = state
        self._room = None
        self.changes.append((n, now, self.cores_free_list[n], state))

    def bring_on(self, n: int, now: float) -> None:
        """Node ``n`` is on (booted, or back up)."""
        self.set_state(n, _ON, now)
        self.index.add(n, self.cores_free_list[n], self.mem_free_list[n])
        self.idle_since_s[n] = now if not self.running_on[n] else _NAN

    def take_off(self, n: int, state: int, now: float) -> None:
        """Node ``n`` leaves the on state for ``state`` (off, booting or down) at ``now``."""
        if self.state_list[n] == _ON:
            self.index.remove(n, self.cores_free_list[n], self.mem_free_list[n])
        self.set_state(n, state, now)
        self.idle_since_s[n] = _NAN

    def reserve(self, task: Task, node: int, now: float) -> None:
        """``task`` takes its cores and memory on ``node`` at ``now``."""
        cf, mf = self.cores_free_list, self.mem_free_list
        old = cf[node]
        old_mem = mf[node]
        new = cf[node] = old - task.cores
        mem = mf[node] = old_mem - task.mem_mb
        self.index.move(node, old, old_mem, new, mem)
        self.changes.append((node, now, new, self.state_list[node]))
        self.running[task.id] = task
        if self._by_end is not None:
            insort(self._by_end, (task.est_end_s, task.id, task))
            self._room = None
        on_node = self.running_on[node]
        on_node[task.id] = task
        if self.arrays_follow:
            self._cores_free_out[node] = new
            self._mem_free_out[node] = mem
            self._tasks_out[node] = len(on_node)
        else:
            self.behind = True
        self._idle_out[node] = _NAN
        task.node = node

    def reserve_job(self, task: Task, nodes: Sequence[int], now: float) -> None:
        """A parallel job takes each part's cores and memory on its node (``nodes``, part by
        part) at ``now``; ``task.node`` is the first, ``task.placed`` all of them."""
        self.running[task.id] = task
        if self._by_end is not None:
            insort(self._by_end, (task.est_end_s, task.id, task))
            self._room = None
        self._parts(task, nodes, part_cores(task), task.mem_mb, now, taking=True)
        task.node = nodes[0]
        task.placed = tuple(nodes)

    def _release_job(self, task: Task, now: float) -> None:
        del self.running[task.id]
        if self._by_end is not None:
            self._forget_end(task)
            self._room = None
        self._parts(task, task.placed, [-c for c in part_cores(task)], -task.mem_mb, now, taking=False)

    def _parts(self, task: Task, nodes: Sequence[int], cores: Sequence[int], mem_mb: int, now: float,
               taking: bool) -> None:
        """A job's parts take (``taking``: ``cores`` and ``mem_mb`` as asked) or give back (negated) their
        nodes' cores and memory at ``now``: each node's lists, index, change, arrays, running
        tasks and idle time, one node after another."""
        cf, mf, st, index = self.cores_free_list, self.mem_free_list, self.state_list, self.index
        changes, running_on, idle_out = self.changes, self.running_on, self._idle_out
        follow = self.arrays_follow
        tid = task.id
        for node, c in zip(nodes, cores, strict=True):
            old, old_mem = cf[node], mf[node]
            new = cf[node] = old - c
            mem = mf[node] = old_mem - mem_mb
            state = st[node]
            if state == _ON:
                index.move(node, old, old_mem, new, mem)
            changes.append((node, now, new, state))
            on_node = running_on[node]
            if taking:
                on_node[tid] = task
                idle_out[node] = _NAN
            else:
                del on_node[tid]
                if state == _ON and not on_node:
                    idle_out[node] = now
            if follow:
                self._cores_free_out[node] = new
                self._mem_free_out[node] = mem
                self._tasks_out[node] = len(on_node)
        if not follow:
            self.behind = True

    def release(self, task: Task, now: float) -> None:
        """``task`` gives its node's cores and memory back (every node's, for a job)."""
        if task.nodes != 1:
            self._release_job(task, now)
            return
        node = task.node
        del self.running[task.id]
        if self._by_end is not None:
            self._forget_end(task)
            self._room = None
        on_node = self.running_on[node]
        del on_node[task.id]
        cf, mf = self.cores_free_list, self.mem_free_list
        old = cf[node]
        old_mem = mf[node]
        new = cf[node] = old + task.cores
        mem = mf[node] = old_mem + task.mem_mb
        if self.arrays_follow:
            self._cores_free_out[node] = new
            self._mem_free_out[node] = mem
            self._tasks_out[node] = len(on_node)
        else:
            self.behind = True
        if self.state_list[node] == _ON:
            self.index.move(node, old, old_mem, new, mem)
            if not on_node:
                self._idle_out[node] = now
        self.changes.append((node, now, new, self.state_list[node]))

    def _forget_end(self, task: Task) -> None:
        """Take ``task`` out of the running tasks by estimated end."""
        by_end = self._by_end
        assert by_end is not None
        i = bisect_left(by_end, (task.est_end_s, task.id))
        if i < len(by_end) and by_end[i][1] == task.id:
            del by_end[i]
        else:  # its estimate was changed while it ran: found by its id
            by_end[:] = [x for x in by_end if x[1] != task.id]

    def running_by_end(self) -> Sequence[tuple[float, int, Task]]:
        """The running tasks as ``(est_end_s, id, task)``, by estimated end then id (a live
        list: do not change it).  The order is kept from the first call on, a task put in
        at its start (its ``est_end_s`` then) and taken out at its end, so no reader sorts
        the running tasks again; a run that never calls it keeps nothing."""
        by_end = self._by_end
        if by_end is None:
            by_end = self._by_end = sorted((t.est_end_s, t.id, t) for t in self.running.values())
        return by_end

    def room_times(self, cores: int, mem_mb: int, k: int, now: float) -> list[tuple[float, int]] | None:
        """When the nodes that are on come to have ``cores`` free cores and ``mem_mb`` free
        memory, as their running tasks end by their estimates (one that overran: ``now``),
        until ``k`` of them have: every node with room by the ``k``-th one's time, as
        ``(time, node)`` by time then index, ``inf`` for the nodes that never have room when
        fewer than ``k`` ever do.  ``None`` when fewer than ``k`` nodes that are on could
        ever hold it (counted by capacity, not node by node).

        The nodes with room now come from the free index; then one walk over the running
        tasks by estimated end (:meth:`running_by_end`), adding what each frees to its nodes,
        stops at the ``k``-th node with room: what a node frees, task by task in that order,
        is what it frees in its own tasks' order, and only the nodes the walk meets are
        looked at.

        Asked again for the same size, no earlier, with nothing reserved, released or
        switched since, it is the last answer at the new time unless a running task's estimated end lies between
        the two times: the same nodes have room now, the same tasks end in the same order,
        and only the times of the nodes with room at the last time (now, or a task that
        overran) move to the new one, ahead of every other in the same order."""
        by_end = self.running_by_end()  # (kept from now on: what tells a change, below)
        key = (cores, mem_mb, k)
        last = self._room
        if last is not None and last[0] == key and now >= last[1]:
            then, answer = last[1], last[2]
            if answer is None:
                return None
            i = bisect_right(by_end, (then, math.inf))  # the first task to end after then
            if i == len(by_end) or by_end[i][0] > now:
                return [(now, node) if t == then else (t, node) for t, node in answer]
        answer = self._room_times(cores, mem_mb, k, now, by_end)
        self._room = (key, now, answer)
        return None if answer is None else answer.copy()

    def _room_times(self, cores: int, mem_mb: int, k: int, now: float,
                    by_end: Sequence[tuple[float, int, Task]]) -> list[tuple[float, int]] | None:
        """:meth:`room_times`, worked out."""
        able = 0
        for (c, m), on in self._on_by_capacity.items():
            if c >= cores and m >= mem_mb:
                able += on
        if able < k:
            return None
        ready = [(now, node) for node in sorted(self.index.with_room(cores, mem_mb))]
        if len(ready) >= k:
            return ready
        cf, mf, st = self.cores_free_list, self.mem_free_list, self.state_list
        cap_cores, cap_mem = self._cap_cores, self._cap_mem
        # every node is on and could hold it (counted above): no node met needs a look
        each = not self.not_on and able == len(st)
        # the nodes met: None once done (room already or by then, or never: not on, too
        # small), else [cores, memory] free by the tasks walked so far
        met: dict[int, list[int] | None] = dict.fromkeys([node for _, node in ready])
        shadow = math.inf
        wanted = k - len(ready)  # nodes still to come to have room
        parts: Iterator[tuple[int, int]] | tuple[tuple[int, int], ...]
        for end, _, t in by_end:
            if end > shadow:
                break
            parts = ((t.node, t.cores),) if t.nodes == 1 else zip(t.placed, part_cores(t), strict=True)
            at = now if end < now else end
            tm = t.mem_mb
            for node, c in parts:
                if node in met:
                    acc = met[node]
                    if acc is None:
                        continue
                    fc, fm = acc[0] + c, acc[1] + tm
                elif each or (st[node] == _ON and cap_cores[node] >= cores and cap_mem[node] >= mem_mb):
                    fc, fm = cf[node] + c, mf[node] + tm
                else:
                    met[node] = None
                    continue
                if fc >= cores and fm >= mem_mb:
                    met[node] = None
                    ready.append((at, node))
                    wanted -= 1
                    if not wanted:
                        shadow = at
                else:
                    met[node] = [fc, fm]
        if len(ready) < k:  # never k nodes: the rest wait for ever
            ready.extend((math.inf, node) for node in range(len(st))
                         if met.get(node, ()) is not None and st[node] == _ON
                         and cap_cores[node] >= cores and cap_mem[node] >= mem_mb)
        ready.sort()
        return ready

    def sync_view(self) -> None:
        """The arrays of free cores, free memory and task counts up to date with the lists
        (for ``arrays_follow`` false)."""
        self.cores_free[:] = self.cores_free_list
        self.mem_free_mb[:] = self.mem_free_list
        self.tasks[:] = [len(on_node) for on_node in self.running_on]
        self.behind = False
