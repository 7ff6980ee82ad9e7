"""An in-memory network of Raft cores with a fake clock, for the state machine's unit tests.

Every request and response goes through kio's writer and reader at its version, as on the wire. Links
can be cut per pair of nodes and nodes stopped; a request over a cut link fails at once (as a refused
connection would), so timers, not the network, decide when elections happen.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from strom.metadata.records import NoOpRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, write_snapshot
from strom.raft import voter_changes
from strom.raft.core import Outbound, RaftConfig, RaftCore
from strom.raft.metadata_log import MetadataLog
from strom.raft.quorum_state import QUORUM_STATE_FILE, QuorumStateStore
from strom.raft.states import Role
from strom.raft.voter_changes import UPDATE_RAFT_VOTER
from strom.raft.voters import Voter, VoterSet, parse_static_voters

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"
CONFIG = RaftConfig(
    election_timeout_ms=1000,
    fetch_timeout_ms=2000,
    election_backoff_max_ms=1000,
    retry_backoff_ms=20,
    request_timeout_ms=2000,
)
NOOP = ApiMessageAndVersion(NoOpRecord(), 0)


def roundtrip(message: Any, schema: Callable[[int, int], type]) -> Any:
    cls = schema(int(message.__api_key__), int(message.__version__))
    buf = io.BytesIO()
    entity_writer(cls)(buf, message)
    value, _ = entity_reader(cls)(memoryview(buf.getvalue()), 0)
    return value


class Network:
    def __init__(
        self,
        root: Path,
        voters: Iterable[int],
        observers: Iterable[int] = (),
        *,
        seed: int = 1,
        config: RaftConfig = CONFIG,
        cluster_id: str = CLUSTER_ID,
        dynamic: bool = False,
    ) -> None:
        """`dynamic`: kraft.version 1 (KIP-853), every node with a directory id and the voters in the
        bootstrap snapshot's VotersRecord (observers read the same snapshot and are not in it)."""
        self.root = root
        self.dynamic = dynamic
        self.now = 1_000_000
        self.config = config
        self.cluster_id = cluster_id
        self.voter_ids = list(voters)
        self.static = [f"{v}@127.0.0.1:{9000 + v}" for v in self.voter_ids]
        self.rng = random.Random(seed)
        self.nodes: dict[int, RaftCore] = {}
        self.down: set[int] = set()
        self.cut: set[frozenset[int]] = set()
        self.sent: list[tuple[int, Outbound]] = []
        for node_id in [*self.voter_ids, *observers]:
            self.start(node_id)

    @staticmethod
    def directory_id(node_id: int) -> uuid.UUID:
        return uuid.UUID(int=0xD1 << 64 | node_id)

    def directory(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}"

    def start(self, node_id: int) -> RaftCore:
        directory = self.directory(node_id)
        snapshot = directory / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT
        voters = parse_static_voters(self.static, "CONTROLLER")
        if self.dynamic:
            voters = VoterSet(
                {i: Voter(i, self.directory_id(i), v.endpoints) for i, v in voters.voters.items()}
            )
        if not snapshot.exists():
            write_snapshot(
                snapshot,
                [],
                kraft_version=1 if self.dynamic else 0,
                voters=voters.to_record() if self.dynamic else None,
                timestamp_ms=self.now,
            )
        core = RaftCore(
            node_id=node_id,
            directory_id=self.directory_id(node_id) if self.dynamic else None,
            cluster_id=self.cluster_id,
            log=MetadataLog.open(directory, clock=lambda: self.now / 1000),
            store=QuorumStateStore(directory / CLUSTER_METADATA_DIR / QUORUM_STATE_FILE),
            bootstrap_voters=voters,
            kraft_version=1 if self.dynamic else 0,
            listener_name="CONTROLLER",
            config=self.config,
            rng=random.Random(self.rng.random()),
        )
        core.start(self.now)
        self.nodes[node_id] = core
        self.down.discard(node_id)
        return core

    def stop(self, node_id: int) -> None:
        """A crash: the node takes no part any more (its files stay)."""
        self.down.add(node_id)
        self.nodes[node_id].log.close()

    def restart(self, node_id: int) -> RaftCore:
        return self.start(node_id)

    def isolate(self, node_id: int) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut.add(frozenset((node_id, other)))

    def heal(self) -> None:
        self.cut.clear()

    def linked(self, a: int, b: int) -> bool:
        return a not in self.down and b not in self.down and frozenset((a, b)) not in self.cut

    def deliver(self, src: int, request: Any) -> Any | None:
        """Send a request from outside (a client, or a test) to node `src`."""
        core = self.nodes[src]
        req = roundtrip(request, load_request_schema)
        response = core.handle_request(int(req.__api_key__), req, self.now)
        return roundtrip(response, load_response_schema)

    def step(self, ms: int = 5) -> None:
        self.now += ms
        for node_id, core in list(self.nodes.items()):
            if node_id in self.down:
                continue
            for out in core.poll(self.now):
                self.sent.append((node_id, out))
                dst = out.destination
                if dst < 0 or dst not in self.nodes or not self.linked(node_id, dst):
                    core.handle_failure(dst, self.now)
                    continue
                req = roundtrip(out.request, load_request_schema)
                if out.api_key == UPDATE_RAFT_VOTER:
                    # the asyncio shell (strom.raft.node) routes it to the leader's voter changes
                    response = voter_changes.handle_update_voter(self.nodes[dst], req, self.now)
                else:
                    response = self.nodes[dst].handle_request(out.api_key, req, self.now)
                core.handle_response(dst, roundtrip(response, load_response_schema), self.now)

    def run(self, ms: int, step: int = 5) -> None:
        for _ in range(ms // step):
            self.step(step)

    def run_until(self, predicate: Callable[[], bool], limit_ms: int = 20_000, step: int = 5) -> int:
        """Steps until `predicate()`; returns the simulated ms it took (AssertionError past the limit)."""
        start = self.now
        while not predicate():
            if self.now - start > limit_ms:
                raise AssertionError(f"not reached within {limit_ms} ms: {self.describe()}")
            self.step(step)
        return self.now - start

    # views ---------------------------------------------------------------------------------------------
    def live(self) -> dict[int, RaftCore]:
        return {i: c for i, c in self.nodes.items() if i not in self.down}

    def leaders(self) -> list[int]:
        return [i for i, c in self.live().items() if c.role is Role.LEADER]

    def leader(self) -> int | None:
        leaders = self.leaders()
        return leaders[0] if len(leaders) == 1 else None

    def stable_leader(self) -> bool:
        """One leader, and every other live voter follows it in its epoch."""
        leader = self.leader()
        if leader is None:
            return False
        epoch = self.nodes[leader].epoch
        return all(
            c.role is Role.FOLLOWER and c.leader_id == leader and c.epoch == epoch
            for i, c in self.live().items()
            if i != leader and i in self.voter_ids
        )

    def describe(self) -> str:
        return ", ".join(
            f"{i}:{c.role.value}@{c.epoch} leo={c.log.end_offset} hw={c.high_watermark}"
            + (" (down)" if i in self.down else "")
            for i, c in self.nodes.items()
        )

    def append(self, count: int = 1) -> int:
        leader = self.leader()
        assert leader is not None
        return self.nodes[leader].append([NOOP] * count, self.now)

    def close(self) -> None:
        for node_id, core in self.nodes.items():
            if node_id not in self.down:
                core.log.close()
