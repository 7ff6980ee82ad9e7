"""A fake clock, a fake __consumer_offsets sink and request helpers for the sans-io group coordinator."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from strom.coordinator.group.core import GroupConfig, GroupCoordinatorCore
from strom.coordinator.group.results import JoinRequest, JoinResult, SyncRequest, SyncResult
from strom.protocol.errors import KafkaError

PROTOCOLS = [("range", b"\x00\x01\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff")]


@dataclass
class FakeSink:
    """Records appends; completes them at once unless `hold` is set."""

    hold: bool = False
    fail: KafkaError | None = None
    appended: list[tuple[int, list[tuple[bytes, bytes | None]]]] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)

    def __call__(self, partition: int, records: list[tuple[bytes, bytes | None]], done: Any) -> None:
        self.appended.append((partition, records))
        if self.hold:
            self.held.append(done)
        else:
            done(self.fail)

    def release(self, error: KafkaError | None = None) -> None:
        held, self.held = self.held, []
        for done in held:
            done(error)


class Box:
    """Collects the replies of one request."""

    def __init__(self) -> None:
        self.results: list[Any] = []

    def __call__(self, result: Any) -> None:
        self.results.append(result)

    @property
    def done(self) -> bool:
        return bool(self.results)

    @property
    def value(self) -> Any:
        assert len(self.results) == 1, self.results
        return self.results[0]


class Harness:
    def __init__(self, **config: Any) -> None:
        defaults = dict(num_partitions=4, initial_rebalance_delay_ms=0)
        defaults.update(config)
        self.config = GroupConfig(**defaults)
        self.sink = FakeSink()
        ids = itertools.count()
        self.core = GroupCoordinatorCore(self.config, self.sink, new_member_id=lambda p: f"{p}-{next(ids)}")
        self.now = 1_000_000
        for p in range(self.config.num_partitions):
            self.core.begin_loading(p)
            self.core.finish_loading(p, self.now)

    def advance(self, ms: int) -> None:
        """Move the clock, firing deadlines in order as a real timer loop would."""
        target = self.now + ms
        while True:
            deadline = self.core.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.core.tick(self.now)
        self.now = target

    def join(
        self,
        member_id: str = "",
        group: str = "g",
        *,
        instance: str | None = None,
        client: str = "c",
        session: int = 10000,
        rebalance: int = 30000,
        protocols: list[tuple[str, bytes]] | None = None,
        protocol_type: str = "consumer",
        v4: bool = False,
    ) -> Box:
        box = Box()
        req = JoinRequest(
            group_id=group,
            member_id=member_id,
            group_instance_id=instance,
            client_id=client,
            client_host="/127.0.0.1",
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            protocol_type=protocol_type,
            protocols=protocols if protocols is not None else PROTOCOLS,
            require_known_member_id=v4,
        )
        self.core.join(req, self.now, box)
        return box

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        group: str = "g",
        instance: str | None = None,
    ) -> Box:
        box = Box()
        req = SyncRequest(group, generation, member_id, instance, None, None, assignments or {})
        self.core.sync(req, self.now, box)
        return box

    def heartbeat(
        self, member_id: str, generation: int, group: str = "g", instance: str | None = None
    ) -> Any:
        return self.core.heartbeat(group, generation, member_id, instance, self.now)

    def state(self, group: str = "g") -> str:
        g = self.core.groups.get(group)
        return "Dead" if g is None else g.state.value

    def form_group(self, n: int, group: str = "g", **kw: Any) -> list[JoinResult]:
        """n members join together and sync; returns their join results (group Stable)."""
        boxes = [self.join(group=group, client=f"c{i}", **kw) for i in range(n)]
        self.advance(0)
        if not all(b.done for b in boxes):
            # Members after the first arrive while the first generation forms: they rebalance again.
            self.advance(60000)
        results: list[JoinResult] = [b.results[-1] for b in boxes]
        gen = results[0].generation_id
        leader = results[0].leader_id
        syncs: list[tuple[JoinResult, Box]] = []
        for r in results:
            assignments = (
                {m.member_id: m.member_id.encode() for m in r.members} if r.member_id == leader else {}
            )
            syncs.append((r, self.sync(r.member_id, gen, assignments, group=group)))
        for _, box in syncs:
            assert isinstance(box.value, SyncResult)
        return results
