"""The sticky task assignor of streams groups (KIP-1071), after Kafka 4.4's StickyTaskAssignor ("sticky").

Tasks are (subtopology, partition) pairs; every subtopology has one task per input partition. Load is
counted per process (a Kafka Streams instance, which may run several members, one per stream thread):
its tasks divided by its members.

- Active tasks, in order: back to the member that had the task active, while that member is under its
  quota (the tasks divided by the members, rounded up); then to a member that had it as a standby (the
  least loaded process first), under quota too; then to the least loaded process's least loaded member.
- Standby tasks (stateful subtopologies only, group.streams.num.standby.replicas copies of each): never on
  a process that has the task already; the member that had it active or as a standby keeps it when its
  process is not above the least load, else the least loaded member of the least loaded process that
  does not have it. Not enough processes: fewer copies (Kafka logs a warning).

Ties are broken by process id and member id, so the result depends only on the input (Kafka's depend on
hash-set order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from strom.coordinator.streams.records import TaskSet

Task = tuple[str, int]


@dataclass(slots=True)
class _Process:
    process_id: str
    members: dict[str, int] = field(default_factory=dict)  # member id -> tasks assigned
    tasks: set[Task] = field(default_factory=set)

    @property
    def load(self) -> float:
        return len(self.tasks) / max(len(self.members), 1)

    def least_loaded_member(self) -> str:
        return min(self.members, key=lambda m: (self.members[m], m))


@dataclass(frozen=True, slots=True)
class AssignorMember:
    process_id: str
    previous: TaskSet


def assign(
    members: dict[str, AssignorMember],
    partitions: dict[str, int],
    stateful: frozenset[str],
    num_standby_replicas: int,
) -> dict[str, TaskSet]:
    processes: dict[str, _Process] = {}
    for member_id in sorted(members):
        spec = members[member_id]
        processes.setdefault(spec.process_id, _Process(spec.process_id)).members[member_id] = 0
    active: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    standby: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    if not members:
        return {}
    prev_active: dict[Task, str] = {}
    prev_standby: dict[Task, list[str]] = {}
    for member_id in sorted(members):
        prev = members[member_id].previous
        for s, parts in prev.active.items():
            for p in parts:
                prev_active[(s, p)] = member_id
        for s, parts in prev.standby.items():
            for p in parts:
                prev_standby.setdefault((s, p), []).append(member_id)

    tasks = [(s, p) for s in sorted(partitions) for p in range(partitions[s])]
    quota = math.ceil(len(tasks) / len(members))

    def give(member_id: str, task: Task, kind: dict[str, dict[str, set[int]]]) -> None:
        proc = processes[members[member_id].process_id]
        proc.members[member_id] += 1
        proc.tasks.add(task)
        kind[member_id].setdefault(task[0], set()).add(task[1])

    def under_quota(member_id: str) -> bool:
        return processes[members[member_id].process_id].members[member_id] < quota

    def least_loaded(candidates: list[str]) -> str | None:
        if not candidates:
            return None
        return min(
            candidates,
            key=lambda m: (
                processes[members[m].process_id].load,
                processes[members[m].process_id].members[m],
                members[m].process_id,
                m,
            ),
        )

    left = []
    for task in tasks:
        owner = prev_active.get(task)
        if owner is not None and owner in members and under_quota(owner):
            give(owner, task, active)
        else:
            left.append(task)
    remaining = []
    for task in left:
        choice = least_loaded([m for m in prev_standby.get(task, []) if under_quota(m)])
        if choice is not None:
            give(choice, task, active)
        else:
            remaining.append(task)
    for task in remaining:
        proc = min(processes.values(), key=lambda p: (p.load, p.process_id))
        give(proc.least_loaded_member(), task, active)

    if num_standby_replicas > 0:
        for task in [t for t in tasks if t[0] in stateful]:
            for _ in range(num_standby_replicas):
                free = [p for p in processes.values() if task not in p.tasks]
                if not free:
                    break
                least = min(p.load for p in free)
                previous = [prev_active.get(task), *prev_standby.get(task, [])]
                chosen = None
                for m in previous:
                    if m is None or m not in members:
                        continue
                    proc = processes[members[m].process_id]
                    if task not in proc.tasks and proc.load <= least:
                        chosen = m
                        break
                if chosen is None:
                    proc = min(free, key=lambda p: (p.load, p.process_id))
                    chosen = proc.least_loaded_member()
                give(chosen, task, standby)

    return {
        m: TaskSet(
            {s: dict.fromkeys(sorted(parts), 0) for s, parts in active[m].items()},
            {s: dict.fromkeys(sorted(parts), 0) for s, parts in standby[m].items()},
            {},
        )
        for m in members
    }
