"""The reconciliation engine of streams groups (KIP-1071), as Kafka 4.4's streams CurrentAssignmentBuilder.

Given a member, its target tasks at the target assignment epoch, who holds every task now, and the tasks
the member says it owns, compute the member's next state:

- STABLE at an older epoch, or UNRELEASED_TASKS: move towards the target.
- UNREVOKED_TASKS: wait until the member no longer reports the tasks pending revocation (or reports
  nothing at all: then wait), then move towards the target.
- Moving towards the target, for active, standby and warm-up tasks alike: keep current ∩ target; what
  the member has beyond the target is pending revocation, and while it still reports any of it the
  member keeps its epoch in UNREVOKED_TASKS. Otherwise it takes the target epoch and the target tasks
  that are free: an active task is free when no member holds it as active and the member's own process
  holds it neither as standby nor as warm-up; a standby or warm-up task is free when the member's process
  does not hold it in any role. Tasks not yet free wait (UNRELEASED_TASKS). So an active task is revoked
  from its old owner before its new owner gets it, and one process never holds a task twice.
- Active tasks are stamped with the epoch at which they were assigned (fencing commits from zombies).
- UNKNOWN (a state from a newer version): the member must come back with nothing owned, or be fenced.
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.streams.group import MemberState, StreamsMember
from strom.coordinator.streams.records import Tasks, TaskSet
from strom.protocol.errors import ErrorCode, KafkaError

# what the member reports owning: active, standby, warm-up {subtopology: partitions}; None when not sent
Owned = tuple[dict[str, set[int]], dict[str, set[int]], dict[str, set[int]]] | None


class FencedMemberEpochError(KafkaError):
    code = ErrorCode.fenced_member_epoch


def _contains_any(owned: Owned, tasks: TaskSet) -> bool:
    if owned is None:
        return True
    for have, pending in zip(owned, tasks.kinds(), strict=True):
        for s, parts in have.items():
            mine = pending.get(s)
            if mine and any(p in mine for p in parts):
                return True
    return False


class StreamsReconciler:
    def __init__(
        self,
        member: StreamsMember,
        target_epoch: int,
        target: TaskSet,
        active_process: Callable[[str, int], str | None],
        standby_processes: Callable[[str, int], set[str]],
        warmup_processes: Callable[[str, int], set[str]],
        owned: Owned,
    ) -> None:
        self.member = member
        self.target_epoch = target_epoch
        self.target = target
        self.active_process = active_process
        self.standby_processes = standby_processes
        self.warmup_processes = warmup_processes
        self.owned = owned

    def build(self) -> StreamsMember:
        m = self.member
        if m.state is MemberState.STABLE:
            return self._next(m.member_epoch) if m.member_epoch != self.target_epoch else m
        if m.state is MemberState.UNREVOKED_TASKS:
            if _contains_any(self.owned, m.pending_revocation):
                return m
            return self._next(m.member_epoch)
        if m.state is MemberState.UNRELEASED_TASKS:
            return self._next(m.member_epoch)
        if self.owned is None or any(any(k.values()) for k in self.owned):
            raise FencedMemberEpochError(
                "The streams group member is in a unknown state. "
                "The member must abandon all its tasks and rejoin."
            )
        return self._next(self.target_epoch)

    def _held_here(self, s: str, p: int) -> bool:
        pid = self.member.process_id
        return pid in self.standby_processes(s, p) or pid in self.warmup_processes(s, p)

    def _diff(
        self, current: Tasks, target: Tasks, unreleased: Callable[[str, int], bool]
    ) -> tuple[Tasks, Tasks, Tasks, bool]:
        kept: Tasks = {}
        revoke: Tasks = {}
        assign: Tasks = {}
        waiting = False
        for s in sorted(set(current) | set(target)):
            have = current.get(s, {})
            want = target.get(s, {})
            k = {p: e for p, e in have.items() if p in want}
            r = {p: e for p, e in have.items() if p not in want}
            a = {}
            for p in want:
                if p in k:
                    continue
                if unreleased(s, p):
                    waiting = True
                else:
                    a[p] = self.target_epoch
            if k:
                kept[s] = k
            if r:
                revoke[s] = r
            if a:
                assign[s] = a
        return kept, revoke, assign, waiting

    def _next(self, epoch: int) -> StreamsMember:
        m = self.member
        pid = m.process_id
        a_kept, a_revoke, a_assign, a_wait = self._diff(
            m.assigned.active,
            self.target.active,
            lambda s, p: self.active_process(s, p) is not None or self._held_here(s, p),
        )

        def other_role(s: str, p: int) -> bool:
            return self.active_process(s, p) == pid or self._held_here(s, p)

        s_kept, s_revoke, s_assign, s_wait = self._diff(m.assigned.standby, self.target.standby, other_role)
        w_kept, w_revoke, w_assign, w_wait = self._diff(m.assigned.warmup, self.target.warmup, other_role)
        revoke = TaskSet(a_revoke, s_revoke, w_revoke)
        kept = TaskSet(a_kept, s_kept, w_kept)
        waiting = a_wait or s_wait or w_wait
        if not revoke.is_empty() and _contains_any(self.owned, revoke):
            return m.with_epoch(
                epoch, state=MemberState.UNREVOKED_TASKS, assigned=kept, pending_revocation=revoke
            )

        def merged(a: Tasks, b: Tasks) -> Tasks:
            out = {s: dict(p) for s, p in a.items()}
            for s, parts in b.items():
                out.setdefault(s, {}).update(parts)
            return out

        assigned = TaskSet(
            merged(a_kept, a_assign),
            {s: dict.fromkeys(p, 0) for s, p in merged(s_kept, s_assign).items()},
            {s: dict.fromkeys(p, 0) for s, p in merged(w_kept, w_assign).items()},
        )
        state = MemberState.UNRELEASED_TASKS if waiting else MemberState.STABLE
        return m.with_epoch(self.target_epoch, state=state, assigned=assigned, pending_revocation=TaskSet())
