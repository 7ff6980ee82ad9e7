"""The KRaft protocol engine, sans-io: Kafka's KafkaRaftClient for one replica of `__cluster_metadata-0`.

Driven from outside with the time passed in: `handle_request` answers Vote (52), BeginQuorumEpoch (53),
EndQuorumEpoch (54), Fetch (1) on the metadata partition, FetchSnapshot (59) and DescribeQuorum (55);
`poll(now_ms)` moves timers and returns the requests to send (`Outbound`); `handle_response` and
`handle_failure` take their outcomes. It reads and writes the metadata log and `quorum-state` itself
(file I/O, never the network), and draws election timeouts from the injected `random.Random`.

Kafka's rules kept here (KIP-595, KIP-630, KIP-853, KIP-996):
- Elections: a voter whose election timeout (`controller.quorum.election.timeout.ms` plus a random part of
  it) or fetch timeout (`controller.quorum.fetch.timeout.ms`) runs out becomes Prospective and asks for
  pre-votes at its current epoch; only with a majority does it bump the epoch as a Candidate (persisting
  its own vote) and ask for real votes. A vote goes to a candidate whose log end (epoch, offset) is at
  least ours, once per epoch, persisted before it is granted. Followers refuse pre-votes while their
  leader is answering their fetches, so a partitioned replica cannot unseat a working leader. A lost
  election backs off randomly, exponentially, up to `controller.quorum.election.backoff.max.ms`.
- A new leader first appends a LeaderChangeMessage control record (with the bootstrap KRaftVersion and
  VotersRecord when the log has none yet, KIP-853), then tells the voters (BeginQuorumEpoch, repeated to
  voters not fetching). The high watermark is the median of the voters' fetch offsets (the leader's own
  end offset counted), and moves only past the epoch's start offset: nothing is committed until an entry
  of the leader's own epoch is.
- Fetch: the leader checks the follower's (fetch offset, last fetched epoch) against its log and answers
  records, a diverging epoch (the follower truncates and fetches again), or a snapshot id when the offset
  lies below its log start (the follower copies the snapshot with FetchSnapshot, then restarts its log at
  the snapshot's end). A fetch with nothing to return waits up to max_wait_ms for an append or a high
  watermark change (the caller parks it). Observers (non-voters) fetch too and are listed by
  DescribeQuorum, but never vote and never count for the high watermark.
- Check quorum: a leader that has not heard from a majority of voters for 1.5 x the fetch timeout
  resigns. A resigning leader sends EndQuorumEpoch naming its successors by fetch offset, so the best
  one starts an election at once.
- Every request's cluster id must be ours (else INCONSISTENT_CLUSTER_ID); requests of an older epoch get
  FENCED_LEADER_EPOCH with the current leader and epoch; a newer epoch in any message moves us to it.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strom.config import BrokerConfig
from strom.metadata.batches import build_control_batch, build_metadata_batch
from strom.metadata.records import KRaftVersionRecord, LeaderChangeMessage, VotersRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import read_snapshot
from strom.protocol.errors import ErrorCode, KafkaError
from strom.raft import requests
from strom.raft.describe_quorum import describe_quorum
from strom.raft.messages import build, error_of, item, response_class, zero_throttle
from strom.raft.metadata_log import (
    METADATA_TOPIC,
    METADATA_TOPIC_ID,
    MetadataLog,
    OffsetAndEpoch,
    ValidKind,
)
from strom.raft.quorum_state import ElectionState, QuorumStateStore
from strom.raft.states import (
    Candidate,
    EpochState,
    Follower,
    Leader,
    Prospective,
    ReplicaProgress,
    Resigned,
    Role,
    SnapshotFetch,
    Unattached,
)
from strom.raft.voters import Voter, VoterHistory, VoterSet

__all__ = ["NotLeaderError", "Outbound", "RaftConfig", "RaftCore"]

log = logging.getLogger("strom.raft")

VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, DESCRIBE_QUORUM, FETCH_SNAPSHOT, FETCH = 52, 53, 54, 55, 59, 1
ADD_RAFT_VOTER, REMOVE_RAFT_VOTER, UPDATE_RAFT_VOTER = 80, 81, 82
SNAPSHOT_CHUNK_BYTES = requests.SNAPSHOT_CHUNK_BYTES


class NotLeaderError(Exception):
    """An append on a replica that is not the leader."""


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Kafka's controller.quorum.* settings, in milliseconds."""

    election_timeout_ms: int = 1000
    fetch_timeout_ms: int = 2000
    election_backoff_max_ms: int = 1000
    retry_backoff_ms: int = 20
    request_timeout_ms: int = 2000
    fetch_max_wait_ms: int = 500  # KafkaRaftClient's fetchMaxWaitMs
    auto_join: bool = False  # controller.quorum.auto.join.enable

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> RaftConfig:
        return cls(
            election_timeout_ms=int(config.get("controller.quorum.election.timeout.ms")),
            fetch_timeout_ms=int(config.get("controller.quorum.fetch.timeout.ms")),
            election_backoff_max_ms=int(config.get("controller.quorum.election.backoff.max.ms")),
            retry_backoff_ms=int(config.get("controller.quorum.retry.backoff.ms")),
            request_timeout_ms=int(config.get("controller.quorum.request.timeout.ms")),
            auto_join=bool(config.get("controller.quorum.auto.join.enable")),
        )


@dataclass(frozen=True, slots=True)
class Outbound:
    """A request for `destination`: a node id, or -1-i for the i-th bootstrap server (leader unknown)."""

    destination: int
    request: Any

    @property
    def api_key(self) -> int:
        return int(self.request.__api_key__)


class RaftCore:
    """One replica's Raft state machine. Not thread-safe; every call passes the current time in ms."""

    def __init__(
        self,
        *,
        node_id: int,
        directory_id: uuid.UUID | None,
        cluster_id: str,
        log: MetadataLog,
        store: QuorumStateStore,
        bootstrap_voters: VoterSet,
        kraft_version: int,
        listener_name: str,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        bootstrap_servers: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.node_id = node_id
        self.directory_id = directory_id
        self.cluster_id = cluster_id
        self.log = log
        self.store = store
        self.kraft_version = kraft_version
        # (offset of the KRaftVersionRecord, level), oldest first; -1: the formatted level. A truncated
        # log takes back the levels written at or after its new end, as Kafka's kraft.version history does
        self._kraft_versions: list[tuple[int, int]] = [(-1, kraft_version)]
        self.listener_name = listener_name
        self.config = config or RaftConfig()
        self.rng = rng or random.Random()
        self.bootstrap_servers = list(bootstrap_servers)
        self.voter_history = VoterHistory(bootstrap_voters)
        # the newest VotersRecord of the log or snapshot (kraft.version 1): what a new snapshot carries
        self.voters_record: VotersRecord | None = None
        self.state: EpochState = Unattached(0, 0)
        self.high_watermark = -1
        self._inflight: dict[int, int] = {}
        self._backoff_until: dict[int, int] = {}
        self._election_retries = 0
        self._endpoints: dict[int, tuple[str, int]] = {}
        # KIP-853: this replica's own controller endpoints and kraft.version range (a controller sets them;
        # a voter whose entry in the voter set differs sends its leader UpdateRaftVoter)
        self.local_endpoints: dict[str, tuple[str, int]] | None = None
        self.local_kraft_versions: tuple[int, int] = (0, 1)
        # what static voters (kraft.version 0) told this leader with UpdateRaftVoter (Kafka's volatile voters)
        self.volatile_voters: dict[int, Voter] = {}
        self.notify: Callable[[], None] = lambda: None
        """Called whenever the log end, the high watermark or the state changes (wakes parked fetches)."""
        self.on_state_change: Callable[[EpochState], None] = lambda state: None

    # -- properties ---------------------------------------------------------------------------------
    @property
    def voters(self) -> VoterSet:
        return self.voter_history.latest

    @property
    def is_voter(self) -> bool:
        return self.voters.is_voter(self.node_id, self.directory_id)

    @property
    def role(self) -> Role:
        return self.state.role

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def leader_id(self) -> int:
        return self.state.leader_id if self.state.role in (Role.LEADER, Role.FOLLOWER) else -1

    def address_of(self, destination: int) -> tuple[str, int] | None:
        """Where to send a request for `destination` (a voter's controller endpoint, an endpoint a leader
        announced, or a bootstrap server)."""
        if destination < 0:
            index = -destination - 1
            return self.bootstrap_servers[index] if index < len(self.bootstrap_servers) else None
        voter = self.voters.voters.get(destination)
        if voter is not None:
            endpoint = voter.endpoint(self.listener_name)
            if endpoint is not None:
                return endpoint
        return self._endpoints.get(destination)

    # -- start ----------------------------------------------------------------------------------------
    def start(self, now_ms: int) -> None:
        """Recover the voter set from the log and the election state from `quorum-state` (Kafka's
        QuorumState.initialize): a replica restarted as leader comes back Resigned, one whose log holds a
        newer epoch than its state file starts unattached in that epoch."""
        self._replay_voters(self.log.start_offset)
        stored = self.store.read() or ElectionState(0)
        log_epoch = self.log.last_fetched_epoch
        if stored.epoch < log_epoch:
            self.state = Unattached(log_epoch, self._election_deadline(now_ms))
            self._persist()
        elif stored.leader_id == self.node_id and self.is_voter:
            self.state = Resigned(stored.epoch, self.node_id, self._election_deadline(now_ms), ())
        elif stored.has_leader and self.address_of(stored.leader_id) is not None:
            self.state = Follower(stored.epoch, stored.leader_id, now_ms + self.config.fetch_timeout_ms)
        else:
            self.state = Unattached(
                stored.epoch, self._election_deadline(now_ms), stored.voted_id, stored.voted_directory_id
            )
        if self.is_voter and self.voters.ids == [self.node_id] and self.role is not Role.LEADER:
            # a quorum of one elects itself without waiting for a timeout
            self.state = Unattached(self.epoch, now_ms)
        self._changed()

    def _replay_voters(self, start_offset: int) -> None:
        snapshot = self.log.latest_snapshot
        if snapshot is not None:
            try:
                content = read_snapshot(self.log.snapshot_path(snapshot))
            except Exception:
                log.warning("cannot read snapshot %s for its voters", snapshot)
            else:
                # what the snapshot holds replaces the control records below it (segments that
                # metadata.max.retention.* still keeps)
                start_offset = max(start_offset, snapshot.offset)
                if content.kraft_version is not None:
                    self.kraft_version = content.kraft_version.kraft_version
                    self._kraft_versions = [(-1, self.kraft_version)]
                if content.voters is not None:
                    self.voter_history = VoterHistory(VoterSet.from_record(content.voters))
                    self.voters_record = content.voters
        for batch in self.log.iter_control_batches(start_offset):
            self._apply_control(batch.records)

    def _apply_control(self, records: Sequence[tuple[int, ApiMessageAndVersion]]) -> None:
        for offset, record in records:
            if isinstance(record.message, VotersRecord):
                self.voter_history.add(offset, VoterSet.from_record(record.message))
                self.voters_record = record.message
            elif isinstance(record.message, KRaftVersionRecord):
                self._set_kraft_version(offset, record.message.kraft_version)

    def _set_kraft_version(self, offset: int, level: int) -> None:
        if offset > self._kraft_versions[-1][0]:
            self._kraft_versions.append((offset, level))
        self.kraft_version = level

    def _truncate_control_state(self, end_offset: int) -> None:
        """The log now ends at `end_offset`: forget the voter sets and kraft.version levels written at or
        after it."""
        self.voter_history.truncate_from(end_offset)
        kept = [entry for entry in self._kraft_versions if entry[0] < end_offset]
        self._kraft_versions = kept or self._kraft_versions[:1]
        self.kraft_version = self._kraft_versions[-1][1]

    # -- transitions ----------------------------------------------------------------------------------
    def _election_deadline(self, now_ms: int) -> int:
        timeout = self.config.election_timeout_ms
        return now_ms + timeout + (self.rng.randrange(timeout) if timeout > 0 else 0)

    def _election_backoff_ms(self) -> int:
        retries = min(self._election_retries, 20)
        upper = self.config.retry_backoff_ms * (2 ** max(retries, 1))
        return min(self.config.election_backoff_max_ms, self.rng.randint(0, max(upper, 1)))

    def _persist(self) -> None:
        s = self.state
        leader = s.leader_id if s.role in (Role.LEADER, Role.FOLLOWER) else -1
        voted, voted_dir = -1, None
        if isinstance(s, Unattached | Prospective):
            voted, voted_dir = s.voted_id, s.voted_directory_id
        elif isinstance(s, Candidate):
            voted, voted_dir = self.node_id, self.directory_id
        self.store.write(
            ElectionState(s.epoch, leader, voted, voted_dir),
            kraft_version=self.kraft_version,
            voters=self.voters.ids,
        )

    def _set_state(self, state: EpochState, *, durable: bool) -> None:
        old = self.state
        self.state = state
        if durable:
            self._persist()
        if state.role is not old.role or state.epoch != old.epoch:
            log.info(
                "raft node %d: %s epoch %d -> %s epoch %d (leader %d)",
                self.node_id,
                old.role.value,
                old.epoch,
                state.role.value,
                state.epoch,
                self.leader_id,
            )
            self._inflight.clear()
        self.on_state_change(state)
        self._changed()

    def _to_unattached(
        self, epoch: int, now_ms: int, voted_id: int = -1, voted_dir: uuid.UUID | None = None
    ) -> None:
        self._set_state(Unattached(epoch, self._election_deadline(now_ms), voted_id, voted_dir), durable=True)

    def _to_follower(self, epoch: int, leader_id: int, now_ms: int) -> None:
        self._election_retries = 0
        self._set_state(Follower(epoch, leader_id, now_ms + self.config.fetch_timeout_ms), durable=True)

    def _to_prospective(self, now_ms: int) -> None:
        s = self.state
        voted = (s.voted_id, s.voted_directory_id) if isinstance(s, Unattached | Prospective) else (-1, None)
        leader = s.leader_id if isinstance(s, Follower | Prospective) else -1
        state = Prospective(s.epoch, self._election_deadline(now_ms), leader, *voted, granted={self.node_id})
        self._set_state(state, durable=False)
        self._maybe_won_prevote(now_ms)

    def _to_candidate(self, now_ms: int) -> None:
        self._election_retries += 1
        state = Candidate(self.epoch + 1, self._election_deadline(now_ms), granted={self.node_id})
        self._set_state(state, durable=True)
        self._maybe_won_election(now_ms)

    def _to_leader(self, granting: set[int], now_ms: int) -> None:
        self._election_retries = 0
        epoch = self.epoch
        start = self.log.end_offset
        progress = {v: ReplicaProgress(v, self.voters.voters[v].directory_id) for v in self.voters.ids}
        # Kafka's LeaderState starts each epoch's volatile voters (kraft.version 0) afresh
        self.volatile_voters = {}
        state = Leader(
            epoch=epoch,
            epoch_start_offset=start,
            voters=progress,
            granting=tuple(sorted(granting)),
            check_quorum_deadline_ms=now_ms + self._check_quorum_timeout_ms,
            begin_epoch_due_ms=now_ms,
            leader_id=self.node_id,
        )
        self._set_state(state, durable=True)
        # the epoch's first entry: committing it commits everything before it (Raft's leader completeness)
        messages: list[Any] = [
            LeaderChangeMessage(
                version=0,
                leader_id=self.node_id,
                voters=tuple(LeaderChangeMessage.Voter(voter_id=v) for v in self.voters.ids),
                granting_voters=tuple(LeaderChangeMessage.Voter(voter_id=v) for v in sorted(granting)),
            )
        ]
        voters = self.voters
        if self._needs_voter_update():
            # KIP-853: a leader whose own entry is stale (new endpoints) writes itself anew at once
            voters = voters.with_voter(self.local_voter())
        if self.kraft_version >= 1 and self.voter_history.only_bootstrap:
            messages.append(KRaftVersionRecord(version=0, kraft_version=self.kraft_version))
        if self.kraft_version >= 1 and (self.voter_history.only_bootstrap or voters is not self.voters):
            messages.append(voters.to_record())
        batch = build_control_batch(messages, base_offset=0, timestamp_ms=now_ms, leader_epoch=epoch)
        info = self.log.append_as_leader(batch, epoch, now_ms)
        if isinstance(messages[-1], VotersRecord):
            self.voter_history.add(info.first_offset + len(messages) - 1, voters)
            self.voters_record = messages[-1]
        self.log.flush()
        self._leader_appended(now_ms)

    def _to_resigned(self, now_ms: int) -> None:
        s = self.state
        assert isinstance(s, Leader)
        others = sorted(
            (p for p in s.voters.values() if p.node_id != self.node_id),
            key=lambda p: (-p.end_offset, p.node_id),
        )
        successors = tuple(p.node_id for p in others)
        self._set_state(
            Resigned(s.epoch, self.node_id, self._election_deadline(now_ms), successors, set(successors)),
            durable=False,
        )

    @property
    def _check_quorum_timeout_ms(self) -> int:
        return int(self.config.fetch_timeout_ms * 1.5)

    def _changed(self) -> None:
        self.notify()

    def resign(self, now_ms: int) -> None:
        """Graceful shutdown of a leader: step down and tell the voters (EndQuorumEpoch)."""
        if isinstance(self.state, Leader):
            self._to_resigned(now_ms)

    # -- the client side: appends ---------------------------------------------------------------------
    def append(self, records: Sequence[ApiMessageAndVersion], now_ms: int) -> int:
        """Append metadata records as one batch (the leader only); returns the batch's last offset. The
        records count as committed once `high_watermark` passes that offset."""
        state = self.state
        if not isinstance(state, Leader):
            raise NotLeaderError(f"node {self.node_id} is not the leader (leader {self.leader_id})")
        batch = build_metadata_batch(records, base_offset=0, timestamp_ms=now_ms, leader_epoch=state.epoch)
        info = self.log.append_as_leader(batch, state.epoch, now_ms)
        self.log.flush()
        self._leader_appended(now_ms)
        return info.last_offset

    def append_kraft_version(self, level: int, voters: VoterSet, now_ms: int) -> int:
        """KIP-853 (the leader only): append a KRaftVersionRecord raising kraft.version to `level`, with a
        VotersRecord naming `voters` in the same control batch (the static voters as the quorum knows them
        now). Both are in force from now on, committed or not. Returns the VotersRecord's offset."""
        state = self.state
        if not isinstance(state, Leader):
            raise NotLeaderError(f"node {self.node_id} is not the leader (leader {self.leader_id})")
        record = voters.to_record()
        messages = [KRaftVersionRecord(version=0, kraft_version=level), record]
        batch = build_control_batch(messages, base_offset=0, timestamp_ms=now_ms, leader_epoch=state.epoch)
        info = self.log.append_as_leader(batch, state.epoch, now_ms)
        self.log.flush()
        self._set_kraft_version(info.first_offset, level)
        self.voter_history.add(info.first_offset + 1, voters)
        self.voters_record = record
        for node_id, progress in state.voters.items():
            # the voter keys now carry directory ids (DescribeQuorum shows them, fetches are checked)
            progress.directory_id = voters.voters[node_id].directory_id
        log.info(
            "raft node %d: kraft.version is now %d, voters %s (offset %d)",
            self.node_id,
            level,
            voters.ids,
            info.first_offset,
        )
        self._persist()
        self._leader_appended(now_ms)
        return info.first_offset + 1

    def append_voters(self, voters: VoterSet, now_ms: int) -> int:
        """KIP-853 (the leader only): append a VotersRecord naming `voters`; the set is in force from now
        on, committed or not, as in Kafka. The leader's replica progress follows the new set at once (an
        added observer becomes a voter, a removed voter an observer). Returns the record's offset."""
        state = self.state
        if not isinstance(state, Leader):
            raise NotLeaderError(f"node {self.node_id} is not the leader (leader {self.leader_id})")
        record = voters.to_record()
        batch = build_control_batch([record], base_offset=0, timestamp_ms=now_ms, leader_epoch=state.epoch)
        info = self.log.append_as_leader(batch, state.epoch, now_ms)
        self.log.flush()
        self.voter_history.add(info.first_offset, voters)
        self.voters_record = record
        for node_id in list(state.voters):
            if node_id not in voters.voters:
                state.observers[node_id] = state.voters.pop(node_id)
        for node_id, voter in voters.voters.items():
            if node_id not in state.voters:
                progress = state.observers.pop(node_id, None) or ReplicaProgress(node_id, voter.directory_id)
                if node_id == self.node_id:
                    progress.end_offset = self.log.end_offset
                state.voters[node_id] = progress
        log.info("raft node %d: voters are now %s (offset %d)", self.node_id, voters.ids, info.first_offset)
        self._leader_appended(now_ms)
        return info.first_offset

    def _leader_appended(self, now_ms: int) -> None:
        state = self.state
        assert isinstance(state, Leader)
        me = state.voters.get(self.node_id)
        if me is not None:
            me.end_offset = self.log.end_offset
            me.last_fetch_ms = me.last_caught_up_ms = now_ms
        self._maybe_update_high_watermark()
        self._changed()

    def _maybe_update_high_watermark(self) -> bool:
        state = self.state
        assert isinstance(state, Leader)
        offsets = sorted((p.end_offset for p in state.voters.values()), reverse=True)
        if not offsets:
            return False
        candidate = offsets[len(offsets) // 2]
        # nothing is committed until an entry of this epoch is (the LeaderChangeMessage at its start)
        if candidate > state.epoch_start_offset and candidate > state.high_watermark:
            state.high_watermark = candidate
            self.high_watermark = candidate
            self._changed()
            return True
        return False

    # -- poll: timers and outbound requests -----------------------------------------------------------
    def poll(self, now_ms: int) -> list[Outbound]:
        """Advance timers; returns the requests to send now."""
        s = self.state
        if isinstance(s, Unattached):
            if self.is_voter and now_ms >= s.election_deadline_ms:
                self._to_prospective(now_ms)
                return self.poll(now_ms)
            if not self.is_voter:
                return self._observer_discovery(now_ms)
            return []
        if isinstance(s, Prospective):
            if now_ms >= s.election_deadline_ms:
                self._lost_prevote(now_ms)
                return self.poll(now_ms)
            return self._send_to_voters(
                now_ms, VOTE, s.granted | s.rejected, lambda v: requests.vote_request(self, v, True)
            )
        if isinstance(s, Candidate):
            if s.backoff_until_ms is not None:
                if now_ms >= s.backoff_until_ms:
                    self._to_prospective(now_ms)
                    return self.poll(now_ms)
                return []
            if now_ms >= s.election_deadline_ms:
                s.backoff_until_ms = now_ms + self._election_backoff_ms()
                return []
            return self._send_to_voters(
                now_ms, VOTE, s.granted | s.rejected, lambda v: requests.vote_request(self, v, False)
            )
        if isinstance(s, Leader):
            return self._poll_leader(s, now_ms)
        if isinstance(s, Follower):
            if now_ms >= s.fetch_deadline_ms:
                if self.is_voter:
                    self._to_prospective(now_ms)
                else:
                    self._to_unattached(s.epoch, now_ms)
                return self.poll(now_ms)
            if not self._ready(s.leader_id, now_ms):
                return []
            if (
                self.kraft_version < 1
                and not s.updated_leader
                and self.is_voter
                and self.local_endpoints
                and self.directory_id is not None
                and now_ms >= s.update_voter_due_ms
            ):
                # KAFKA-16538: a static voter tells each new leader its directory id and endpoints, which
                # a kraft.version upgrade writes into the first VotersRecord; at once, then again every
                # update period until the leader took it (it answers REQUEST_TIMED_OUT before its high
                # watermark is known)
                s.update_voter_due_ms = now_ms + self._update_voter_period_ms
                return [self._sent(Outbound(s.leader_id, requests.update_voter_request(self)))]
            if s.update_voter_due_ms < 0:
                s.update_voter_due_ms = now_ms + self._update_voter_period_ms
            elif now_ms >= s.update_voter_due_ms:
                s.update_voter_due_ms = now_ms + self._update_voter_period_ms
                change = self._voter_set_request()
                if change is not None:
                    return [self._sent(Outbound(s.leader_id, change))]
            if s.snapshot_fetch is not None:
                return [
                    self._sent(Outbound(s.leader_id, requests.fetch_snapshot_request(self, s.snapshot_fetch)))
                ]
            return [self._sent(Outbound(s.leader_id, requests.fetch_request(self)))]
        if isinstance(s, Resigned):
            if now_ms >= s.election_deadline_ms:
                self._to_unattached(s.epoch, now_ms)
                return self.poll(now_ms)
            return self._send_to_voters(
                now_ms,
                END_QUORUM_EPOCH,
                set(self.voters.ids) - s.unacked,
                lambda v: requests.end_epoch_request(self, s),
            )
        return []

    @property
    def _update_voter_period_ms(self) -> int:
        return self.config.fetch_timeout_ms * 3

    def _voter_set_request(self) -> Any | None:
        """KIP-853, every 3 fetch timeouts as a follower: a voter whose entry is stale sends UpdateRaftVoter
        (Kafka's pollFollowerAsVoter); with controller.quorum.auto.join.enable, a controller outside the
        voter set asks to be added, after asking to remove the voter of its id with another directory id."""
        if self.is_voter:
            return requests.update_voter_request(self) if self._needs_voter_update() else None
        if not (self.config.auto_join and self.kraft_version >= 1 and self.local_endpoints):
            return None
        stale = self.voters.voters.get(self.node_id)
        if stale is not None:
            return requests.remove_voter_request(self, stale.directory_id)
        return requests.add_voter_request(self)

    def local_voter(self) -> Voter:
        endpoints = dict(self.local_endpoints or {})
        return Voter(self.node_id, self.directory_id, endpoints, self.local_kraft_versions)

    def _needs_voter_update(self) -> bool:
        """Kafka's VoterSet.voterNodeNeedsUpdate for this replica (kraft.version 1 voters only)."""
        if self.kraft_version < 1 or not self.local_endpoints or not self.is_voter:
            return False
        entry = self.voters.voters.get(self.node_id)
        local = self.local_voter()
        return entry is not None and (
            dict(entry.endpoints) != local.endpoints or entry.kraft_versions != local.kraft_versions
        )

    def next_wakeup_ms(self, now_ms: int) -> int:
        """When `poll` next has something to do on its own (requests and responses call it sooner)."""
        s = self.state
        deadlines = [now_ms + 1000]
        if isinstance(s, Unattached | Prospective | Candidate | Resigned):
            deadlines.append(s.election_deadline_ms)
        if isinstance(s, Candidate) and s.backoff_until_ms is not None:
            deadlines.append(s.backoff_until_ms)
        if isinstance(s, Follower):
            deadlines.append(s.fetch_deadline_ms)
            if s.update_voter_due_ms >= 0:
                deadlines.append(s.update_voter_due_ms)
        if isinstance(s, Leader):
            deadlines += [s.check_quorum_deadline_ms, s.begin_epoch_due_ms]
        deadlines += [t for t in self._backoff_until.values() if t > now_ms]
        return max(now_ms, min(deadlines))

    def _ready(self, destination: int, now_ms: int) -> bool:
        return destination not in self._inflight and self._backoff_until.get(destination, 0) <= now_ms

    def _sent(self, out: Outbound) -> Outbound:
        self._inflight[out.destination] = out.api_key
        return out

    def _send_to_voters(
        self, now_ms: int, api_key: int, skip: set[int], make: Callable[[int], Any]
    ) -> list[Outbound]:
        out = []
        for voter in self.voters.ids:
            if voter == self.node_id or voter in skip or not self._ready(voter, now_ms):
                continue
            out.append(self._sent(Outbound(voter, make(voter))))
        return out

    def _observer_discovery(self, now_ms: int) -> list[Outbound]:
        """An observer without a leader fetches from any voter or bootstrap server: the answer names the
        leader."""
        targets = [v for v in self.voters.ids if self.address_of(v) is not None and v != self.node_id]
        targets += [-1 - i for i in range(len(self.bootstrap_servers))]
        ready = [t for t in targets if self._ready(t, now_ms)]
        if not ready or any(t in self._inflight for t in targets):
            return []
        return [self._sent(Outbound(self.rng.choice(ready), requests.fetch_request(self)))]

    def _poll_leader(self, s: Leader, now_ms: int) -> list[Outbound]:
        if not self.is_voter and self.voter_history.latest_offset < s.high_watermark:
            # KIP-853: a leader that removed itself resigns once the new voter set is committed
            log.info(
                "raft node %d: not in the committed voter set %s; resigning from epoch %d",
                self.node_id,
                self.voters.ids,
                s.epoch,
            )
            self._to_resigned(now_ms)
            return self.poll(now_ms)
        if now_ms >= s.check_quorum_deadline_ms:
            if len(self.voters) <= 1:
                s.check_quorum_deadline_ms = now_ms + self._check_quorum_timeout_ms
            else:
                log.warning(
                    "raft node %d: no majority of voters fetched within %d ms; resigning",
                    self.node_id,
                    self._check_quorum_timeout_ms,
                )
                self._to_resigned(now_ms)
                return self.poll(now_ms)
        out: list[Outbound] = []
        if now_ms >= s.begin_epoch_due_ms:
            # voters that have not fetched lately may not know this leader yet
            half = self.config.fetch_timeout_ms // 2
            stale = {v for v, p in s.voters.items() if p.acknowledged and now_ms - p.last_fetch_ms < half}
            out = self._send_to_voters(
                now_ms, BEGIN_QUORUM_EPOCH, stale, lambda v: requests.begin_epoch_request(self, v)
            )
            s.begin_epoch_due_ms = now_ms + max(half, 1)
        return out

    # -- requests -------------------------------------------------------------------------------------
    def handle_request(self, api_key: int, request: Any, now_ms: int, *, can_wait: bool = False) -> Any:
        """The response to a request of this replica's APIs (same version as the request), or None for
        a Fetch that should wait (call again with can_wait=False when it has waited)."""
        if api_key == VOTE:
            return self._handle_vote(request, now_ms)
        if api_key == BEGIN_QUORUM_EPOCH:
            return self._handle_begin_epoch(request, now_ms)
        if api_key == END_QUORUM_EPOCH:
            return self._handle_end_epoch(request, now_ms)
        if api_key == FETCH:
            return self._handle_fetch(request, now_ms, can_wait)
        if api_key == FETCH_SNAPSHOT:
            return self._handle_fetch_snapshot(request, now_ms)
        if api_key == DESCRIBE_QUORUM:
            return describe_quorum(self, request, now_ms)
        raise ValueError(f"api key {api_key} is not a Raft API")

    def _cluster_ok(self, request: Any) -> bool:
        cluster_id = getattr(request, "cluster_id", None)
        return cluster_id is None or cluster_id == self.cluster_id

    def _single_partition(self, request: Any, name_field: str = "topic_name") -> Any | None:
        topics = request.topics
        if (
            len(topics) != 1
            or getattr(topics[0], name_field) != METADATA_TOPIC
            or len(topics[0].partitions) != 1
        ):
            return None
        part = topics[0].partitions[0]
        index = getattr(part, "partition_index", getattr(part, "partition", 0))
        return part if index == 0 else None

    def _epoch_response(
        self, cls: type, error: ErrorCode, top_error: ErrorCode = ErrorCode.none, **extra: Any
    ) -> Any:
        """A one-partition response of Vote, BeginQuorumEpoch or EndQuorumEpoch."""
        if top_error is not ErrorCode.none:
            return build(cls, error_code=top_error, topics=())
        topic_cls = item(cls, "topics")
        part_cls = item(topic_cls, "partitions")
        part = build(
            part_cls,
            partition_index=0,
            error_code=error,
            leader_id=self.leader_id,
            leader_epoch=self.epoch,
            **extra,
        )
        return build(
            cls,
            error_code=ErrorCode.none,
            topics=(topic_cls(topic_name=METADATA_TOPIC, partitions=(part,)),),
            node_endpoints=self._node_endpoints(cls),
        )

    def _node_endpoints(self, cls: type) -> tuple[Any, ...]:
        if "node_endpoints" not in cls.__dataclass_fields__ or self.leader_id < 0:
            return ()
        address = self.address_of(self.leader_id)
        if address is None:
            return ()
        ep_cls = item(cls, "node_endpoints")
        return (build(ep_cls, node_id=self.leader_id, host=address[0], port=address[1], rack=None),)

    def _handle_vote(self, req: Any, now_ms: int) -> Any:
        cls = response_class(VOTE, req.__version__)
        if not self._cluster_ok(req):
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.inconsistent_cluster_id)
        part = self._single_partition(req)
        if part is None:
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.invalid_request)
        candidate, epoch = part.replica_id, part.replica_epoch
        pre_vote = bool(getattr(part, "pre_vote", False))
        candidate_dir = getattr(part, "replica_directory_id", None)
        if part.last_offset_epoch < 0 or candidate < 0:
            return self._epoch_response(cls, ErrorCode.invalid_request, vote_granted=False)
        if epoch < self.epoch:
            return self._epoch_response(cls, ErrorCode.fenced_leader_epoch, vote_granted=False)
        if epoch > self.epoch and not pre_vote:
            self._to_unattached(epoch, now_ms)
        voter_id = getattr(req, "voter_id", -1)
        voter_dir = getattr(part, "voter_directory_id", None)
        if (voter_id >= 0 and voter_id != self.node_id) or (
            voter_dir not in (None, uuid.UUID(int=0))
            and self.directory_id is not None
            and voter_dir != self.directory_id
        ):
            return self._epoch_response(cls, ErrorCode.invalid_voter_key, vote_granted=False)
        up_to_date = OffsetAndEpoch(part.last_offset_epoch, part.last_offset) >= self.log.end
        granted = self._can_grant(candidate, candidate_dir, up_to_date, pre_vote, now_ms)
        if granted and not pre_vote:
            s = self.state
            if isinstance(s, Unattached | Prospective) and s.voted_id < 0:
                self._to_unattached(self.epoch, now_ms, candidate, candidate_dir)
        return self._epoch_response(cls, ErrorCode.none, vote_granted=granted)

    def _can_grant(
        self, candidate: int, candidate_dir: uuid.UUID | None, up_to_date: bool, pre_vote: bool, now_ms: int
    ) -> bool:
        s = self.state
        if not self.is_voter:
            return False
        if isinstance(s, Unattached | Prospective):
            if pre_vote:
                return up_to_date
            if s.voted_id >= 0:
                return s.voted_id == candidate
            if isinstance(s, Prospective) and s.leader_id >= 0:
                return False
            return up_to_date
        if isinstance(s, Candidate):
            return pre_vote and up_to_date
        if isinstance(s, Follower):
            # KIP-996: no pre-vote while the leader answers our fetches (unless it announced it resigned)
            leader_alive = (
                s.last_fetch_ok_ms >= 0 and now_ms - s.last_fetch_ok_ms < self.config.fetch_timeout_ms
            )
            return pre_vote and up_to_date and (s.leader_resigned or not leader_alive)
        return False  # leaders and resigned leaders vote for nobody in their epoch

    def _handle_begin_epoch(self, req: Any, now_ms: int) -> Any:
        cls = response_class(BEGIN_QUORUM_EPOCH, req.__version__)
        if not self._cluster_ok(req):
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.inconsistent_cluster_id)
        part = self._single_partition(req)
        if part is None:
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.invalid_request)
        self._learn_endpoints(part.leader_id, getattr(req, "leader_endpoints", ()))
        voter_dir = getattr(part, "voter_directory_id", None)
        if (
            voter_dir not in (None, uuid.UUID(int=0))
            and self.directory_id is not None
            and voter_dir != self.directory_id
        ):
            return self._epoch_response(cls, ErrorCode.invalid_voter_key)
        if part.leader_epoch < self.epoch:
            return self._epoch_response(cls, ErrorCode.fenced_leader_epoch)
        s = self.state
        if part.leader_epoch > self.epoch or not (isinstance(s, Follower) and s.leader_id == part.leader_id):
            if isinstance(s, Leader) and part.leader_epoch == self.epoch:
                return self._epoch_response(cls, ErrorCode.invalid_request)
            self._to_follower(part.leader_epoch, part.leader_id, now_ms)
        return self._epoch_response(cls, ErrorCode.none)

    def _learn_endpoints(self, node_id: int, endpoints: Sequence[Any]) -> None:
        chosen = None
        for ep in endpoints:
            if chosen is None or getattr(ep, "name", None) == self.listener_name:
                chosen = (ep.host, int(ep.port))
        if chosen is not None and node_id >= 0:
            self._endpoints[node_id] = chosen

    def _handle_end_epoch(self, req: Any, now_ms: int) -> Any:
        cls = response_class(END_QUORUM_EPOCH, req.__version__)
        if not self._cluster_ok(req):
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.inconsistent_cluster_id)
        part = self._single_partition(req)
        if part is None:
            return self._epoch_response(cls, ErrorCode.none, ErrorCode.invalid_request)
        self._learn_endpoints(part.leader_id, getattr(req, "leader_endpoints", ()))
        if part.leader_epoch < self.epoch:
            return self._epoch_response(cls, ErrorCode.fenced_leader_epoch)
        if part.leader_epoch > self.epoch:
            self._to_unattached(part.leader_epoch, now_ms)
        s = self.state
        if isinstance(s, Follower) and s.leader_id == part.leader_id:
            if hasattr(part, "preferred_candidates"):
                successors = [c.candidate_id for c in part.preferred_candidates]
            else:
                successors = list(part.preferred_successors)
            s.leader_resigned = True
            if self.is_voter:
                # the best successor starts at once, the next ones a little later (Kafka's
                # strictExponentialElectionBackoffMs); the others wait for the whole backoff
                if self.node_id in successors:
                    position = successors.index(self.node_id)
                    delay = (
                        0
                        if position == 0
                        else min(
                            self.config.election_backoff_max_ms, self.config.retry_backoff_ms * 2**position
                        )
                    )
                else:
                    delay = self.config.election_backoff_max_ms
                s.fetch_deadline_ms = min(s.fetch_deadline_ms, now_ms + delay)
        return self._epoch_response(cls, ErrorCode.none)

    # -- fetch (leader side) ---------------------------------------------------------------------------
    def _handle_fetch(self, req: Any, now_ms: int, can_wait: bool) -> Any:
        version = int(req.__version__)
        cls = response_class(FETCH, version)
        if not self._cluster_ok(req):
            return build(
                cls,
                throttle_time=zero_throttle(),
                error_code=ErrorCode.inconsistent_cluster_id,
                session_id=0,
                responses=(),
            )
        topics = req.topics
        by_id = version >= 13
        if (
            len(topics) != 1
            or len(topics[0].partitions) != 1
            or topics[0].partitions[0].partition != 0
            or (topics[0].topic_id != METADATA_TOPIC_ID if by_id else topics[0].topic != METADATA_TOPIC)
        ):
            return build(
                cls,
                throttle_time=zero_throttle(),
                error_code=ErrorCode.invalid_request,
                session_id=0,
                responses=(),
            )
        part = topics[0].partitions[0]
        if version >= 15:
            replica_id = int(req.replica_state.replica_id)
        else:
            replica_id = int(getattr(req, "replica_id", -1))
        error = ErrorCode.none
        records = b""
        diverging: OffsetAndEpoch | None = None
        snapshot: OffsetAndEpoch | None = None
        s = self.state
        if part.fetch_offset < 0 or (part.last_fetched_epoch < 0 and part.fetch_offset != 0):
            error = ErrorCode.invalid_request
        else:
            error = self._leader_only_error(part.current_leader_epoch)
        if error is ErrorCode.none:
            assert isinstance(s, Leader)
            kind, found = self.log.validate_offset_and_epoch(part.fetch_offset, part.last_fetched_epoch)
            if kind is ValidKind.VALID:
                moved = self._update_replica(
                    s, replica_id, getattr(part, "replica_directory_id", None), part.fetch_offset, now_ms
                )
                max_bytes = max(1, min(int(part.partition_max_bytes), int(req.max_bytes)))
                records = self.log.read(part.fetch_offset, max_bytes)
                follower_hw = getattr(part, "high_watermark", None)
                behind = follower_hw is not None and 0 <= follower_hw < s.high_watermark
                wait_ms = int(req.max_wait.total_seconds() * 1000)
                if not records and can_wait and wait_ms > 0 and not moved and not behind:
                    return None
            elif kind is ValidKind.DIVERGING:
                diverging = found
            else:
                snapshot = found
        return self._fetch_response(cls, error, records, diverging, snapshot)

    def _leader_only_error(self, request_epoch: int) -> ErrorCode:
        if request_epoch < self.epoch:
            return ErrorCode.fenced_leader_epoch
        if request_epoch > self.epoch:
            return ErrorCode.unknown_leader_epoch
        if not isinstance(self.state, Leader):
            return ErrorCode.not_leader_or_follower
        return ErrorCode.none

    def _update_replica(
        self, s: Leader, replica_id: int, directory_id: uuid.UUID | None, fetch_offset: int, now_ms: int
    ) -> bool:
        """Record a replica's fetch; True when it moved the high watermark."""
        if replica_id < 0:
            return False
        if replica_id in s.voters and self.voters.is_voter(replica_id, directory_id):
            if replica_id == self.node_id:
                return False
            s.voters[replica_id].update(fetch_offset, now_ms, self.log.end_offset)
            self._heard_from_voter(s, replica_id, now_ms)
            return self._maybe_update_high_watermark()
        observer = s.observers.get(replica_id)
        if observer is None:
            observer = s.observers[replica_id] = ReplicaProgress(replica_id, directory_id)
        observer.update(fetch_offset, now_ms, self.log.end_offset)
        return False

    def _heard_from_voter(self, s: Leader, voter: int, now_ms: int) -> None:
        """Kafka's check quorum: the timer restarts each time a majority (the leader included) has
        fetched since it last restarted."""
        s.fetched_since_check.add(voter)
        if len(s.fetched_since_check) + 1 >= self.voters.majority:
            s.fetched_since_check.clear()
            s.check_quorum_deadline_ms = now_ms + self._check_quorum_timeout_ms

    def _fetch_response(
        self,
        cls: type,
        error: ErrorCode,
        records: bytes,
        diverging: OffsetAndEpoch | None,
        snapshot: OffsetAndEpoch | None,
    ) -> Any:
        topic_cls = item(cls, "responses")
        part_cls = item(topic_cls, "partitions")
        fields: dict[str, Any] = dict(
            partition_index=0,
            error_code=error,
            high_watermark=self.high_watermark,
            last_stable_offset=-1,
            log_start_offset=self.log.start_offset,
            aborted_transactions=(),
            preferred_read_replica=-1,
            records=records,
            current_leader=item(part_cls, "current_leader")(
                leader_id=self.leader_id, leader_epoch=self.epoch
            ),
        )
        if diverging is not None:
            fields["diverging_epoch"] = item(part_cls, "diverging_epoch")(
                epoch=diverging.epoch, end_offset=diverging.offset
            )
        if snapshot is not None:
            fields["snapshot_id"] = item(part_cls, "snapshot_id")(
                end_offset=snapshot.offset, epoch=snapshot.epoch
            )
        topic_key = "topic_id" if "topic_id" in topic_cls.__dataclass_fields__ else "topic"
        topic_value = METADATA_TOPIC_ID if topic_key == "topic_id" else METADATA_TOPIC
        topic = topic_cls(**{topic_key: topic_value, "partitions": (build(part_cls, **fields),)})
        return build(
            cls,
            throttle_time=zero_throttle(),
            error_code=ErrorCode.none,
            session_id=0,
            responses=(topic,),
            node_endpoints=self._node_endpoints(cls),
        )

    def _handle_fetch_snapshot(self, req: Any, now_ms: int) -> Any:
        cls = response_class(FETCH_SNAPSHOT, req.__version__)
        if not self._cluster_ok(req):
            return build(
                cls, throttle_time=zero_throttle(), error_code=ErrorCode.inconsistent_cluster_id, topics=()
            )
        part = self._single_partition(req, "name")
        if part is None:
            return build(cls, throttle_time=zero_throttle(), error_code=ErrorCode.invalid_request, topics=())
        topic_cls = item(cls, "topics")
        part_cls = item(topic_cls, "partitions")
        snapshot = OffsetAndEpoch(part.snapshot_id.epoch, part.snapshot_id.end_offset)
        error = self._leader_only_error(part.current_leader_epoch)
        size, chunk = -1, b""
        if error is ErrorCode.none:
            found = self.log.snapshot_size(snapshot)
            if found is None:
                error = ErrorCode.snapshot_not_found
            elif part.position < 0 or part.position >= found:
                error = ErrorCode.position_out_of_range
            else:
                size = found
                chunk = self.log.read_snapshot_chunk(
                    snapshot, int(part.position), max(1, min(int(req.max_bytes), SNAPSHOT_CHUNK_BYTES))
                )
                s = self.state
                if isinstance(s, Leader) and req.replica_id in s.voters:
                    self._heard_from_voter(s, req.replica_id, now_ms)
        response_part = build(
            part_cls,
            index=0,
            error_code=error,
            snapshot_id=item(part_cls, "snapshot_id")(end_offset=snapshot.offset, epoch=snapshot.epoch),
            current_leader=item(part_cls, "current_leader")(
                leader_id=self.leader_id, leader_epoch=self.epoch
            ),
            size=size,
            position=part.position,
            unaligned_records=chunk,
        )
        return build(
            cls,
            throttle_time=zero_throttle(),
            error_code=ErrorCode.none,
            topics=(topic_cls(name=METADATA_TOPIC, partitions=(response_part,)),),
            node_endpoints=self._node_endpoints(cls),
        )

    # -- responses ------------------------------------------------------------------------------------------
    def handle_failure(self, destination: int, now_ms: int) -> None:
        """A request to `destination` failed (connection refused, timeout): retry after a backoff."""
        self._inflight.pop(destination, None)
        self._backoff_until[destination] = now_ms + self.config.retry_backoff_ms

    def handle_response(self, destination: int, response: Any, now_ms: int) -> None:
        api_key = int(response.__api_key__)
        self._inflight.pop(destination, None)
        top = error_of(response.error_code)
        s = self.state
        if (
            api_key == UPDATE_RAFT_VOTER
            and top in (ErrorCode.none, ErrorCode.unsupported_version)
            and isinstance(s, Follower)
            and s.leader_id == destination
        ):
            # sent again after any other answer, or none (Kafka's handleUpdateVoterResponse)
            s.updated_leader = True
        if top is not ErrorCode.none:
            if top is ErrorCode.inconsistent_cluster_id:
                log.error(
                    "raft node %d: node %d belongs to another cluster (INCONSISTENT_CLUSTER_ID)",
                    self.node_id,
                    destination,
                )
            self._backoff_until[destination] = now_ms + self.config.retry_backoff_ms
            return
        self._learn_node_endpoints(getattr(response, "node_endpoints", ()))
        if api_key == UPDATE_RAFT_VOTER:
            leader = response.current_leader
            self._maybe_handle_common(ErrorCode.none, leader.leader_id, leader.leader_epoch, now_ms)
        elif api_key in (ADD_RAFT_VOTER, REMOVE_RAFT_VOTER):
            log.info("raft node %d: leader %d took its voter change (auto-join)", self.node_id, destination)
        elif api_key == FETCH:
            self._handle_fetch_response(destination, response, now_ms)
        elif api_key == FETCH_SNAPSHOT:
            self._handle_fetch_snapshot_response(destination, response, now_ms)
        else:
            part = (
                response.topics[0].partitions[0]
                if response.topics and response.topics[0].partitions
                else None
            )
            if part is None:
                return
            error = error_of(part.error_code)
            if self._maybe_handle_common(error, part.leader_id, part.leader_epoch, now_ms):
                return
            if api_key == VOTE:
                self._handle_vote_response(destination, error, bool(part.vote_granted), now_ms)
            elif api_key == BEGIN_QUORUM_EPOCH:
                s = self.state
                if error is ErrorCode.none and isinstance(s, Leader) and destination in s.voters:
                    s.voters[destination].acknowledged = True
            elif api_key == END_QUORUM_EPOCH:
                s = self.state
                if isinstance(s, Resigned):
                    s.unacked.discard(destination)

    def _learn_node_endpoints(self, endpoints: Sequence[Any]) -> None:
        for ep in endpoints:
            if ep.node_id >= 0:
                self._endpoints[int(ep.node_id)] = (ep.host, int(ep.port))

    def _maybe_handle_common(self, error: ErrorCode, leader_id: int, epoch: int, now_ms: int) -> bool:
        """Kafka's maybeHandleCommonResponse: a newer epoch or a leader we did not know moves us; True when
        the response is dealt with."""
        if epoch < self.epoch:
            return True  # an answer from an older epoch
        if epoch > self.epoch:
            if leader_id >= 0 and leader_id != self.node_id and self.address_of(leader_id) is not None:
                self._to_follower(epoch, leader_id, now_ms)
            else:
                self._to_unattached(epoch, now_ms)
            return True
        known = self.state.leader_id if isinstance(self.state, Follower | Leader | Prospective) else -1
        if (
            leader_id >= 0
            and leader_id != self.node_id
            and known < 0
            and self.address_of(leader_id) is not None
        ):
            self._to_follower(epoch, leader_id, now_ms)
            return True
        return error not in (ErrorCode.none,)

    def _handle_vote_response(self, voter: int, error: ErrorCode, granted: bool, now_ms: int) -> None:
        s = self.state
        if error is not ErrorCode.none or voter not in self.voters:
            return
        if isinstance(s, Prospective | Candidate):
            (s.granted if granted else s.rejected).add(voter)
            if isinstance(s, Prospective):
                self._maybe_won_prevote(now_ms)
            else:
                self._maybe_won_election(now_ms)

    def _maybe_won_prevote(self, now_ms: int) -> None:
        s = self.state
        assert isinstance(s, Prospective)
        if len(s.granted & set(self.voters.ids)) >= self.voters.majority:
            self._to_candidate(now_ms)
        elif len(s.rejected) > len(self.voters) - self.voters.majority:
            self._lost_prevote(now_ms)

    def _lost_prevote(self, now_ms: int) -> None:
        s = self.state
        assert isinstance(s, Prospective)
        if s.leader_id >= 0 and self.address_of(s.leader_id) is not None:
            self._set_state(
                Follower(s.epoch, s.leader_id, now_ms + self.config.fetch_timeout_ms), durable=False
            )
        else:
            self._set_state(
                Unattached(s.epoch, self._election_deadline(now_ms), s.voted_id, s.voted_directory_id),
                durable=False,
            )

    def _maybe_won_election(self, now_ms: int) -> None:
        s = self.state
        assert isinstance(s, Candidate)
        if len(s.granted & set(self.voters.ids)) >= self.voters.majority:
            self._to_leader(set(s.granted), now_ms)
        elif len(s.rejected) > len(self.voters) - self.voters.majority and s.backoff_until_ms is None:
            s.backoff_until_ms = now_ms + self._election_backoff_ms()

    # -- fetch (follower side) --------------------------------------------------------------------------
    def _handle_fetch_response(self, destination: int, response: Any, now_ms: int) -> None:
        if not response.responses or not response.responses[0].partitions:
            return
        part = response.responses[0].partitions[0]
        error = error_of(part.error_code)
        leader = part.current_leader
        if self._maybe_handle_common(error, leader.leader_id, leader.leader_epoch, now_ms):
            if error is not ErrorCode.none:
                self._backoff_until[destination] = now_ms + self.config.retry_backoff_ms
            return
        s = self.state
        if not (isinstance(s, Follower) and s.leader_id == destination):
            return
        s.fetch_deadline_ms = now_ms + self.config.fetch_timeout_ms
        s.last_fetch_ok_ms = now_ms
        if part.diverging_epoch.epoch >= 0 or part.diverging_epoch.end_offset >= 0:
            target = OffsetAndEpoch(part.diverging_epoch.epoch, part.diverging_epoch.end_offset)
            end = self.log.truncate_to_end_offset(target)
            self._truncate_control_state(end)
            log.info(
                "raft node %d: log diverged from leader %d at epoch %d; truncated to %d",
                self.node_id,
                destination,
                target.epoch,
                end,
            )
            self._changed()
            return
        if part.snapshot_id.end_offset >= 0:
            snapshot = OffsetAndEpoch(part.snapshot_id.epoch, part.snapshot_id.end_offset)
            s.snapshot_fetch = SnapshotFetch(snapshot, self.log.begin_snapshot_fetch(snapshot))
            return
        records = part.records
        if records:
            try:
                info = self.log.append_as_follower(records)
            except KafkaError as exc:
                log.warning(
                    "raft node %d: cannot append the leader's records (%s); fetching again", self.node_id, exc
                )
                self._backoff_until[destination] = now_ms + self.config.retry_backoff_ms
                return
            self.log.flush()
            for batch in self.log.iter_control_batches(info.first_offset):
                self._apply_control(batch.records)
            self._changed()
        if part.high_watermark >= 0:
            hw = min(part.high_watermark, self.log.end_offset)
            if hw > self.high_watermark:
                self.high_watermark = s.high_watermark = hw
                self._changed()

    def _handle_fetch_snapshot_response(self, destination: int, response: Any, now_ms: int) -> None:
        if not response.topics or not response.topics[0].partitions:
            return
        part = response.topics[0].partitions[0]
        error = error_of(part.error_code)
        leader = part.current_leader
        if self._maybe_handle_common(error, leader.leader_id, leader.leader_epoch, now_ms):
            if error is not ErrorCode.none:
                self._backoff_until[destination] = now_ms + self.config.retry_backoff_ms
                s = self.state
                if isinstance(s, Follower) and error in (
                    ErrorCode.snapshot_not_found,
                    ErrorCode.position_out_of_range,
                ):
                    s.snapshot_fetch = None  # fetch again: the leader will name its current snapshot
            return
        s = self.state
        if not (isinstance(s, Follower) and s.leader_id == destination and s.snapshot_fetch is not None):
            return
        fetch = s.snapshot_fetch
        snapshot = OffsetAndEpoch(part.snapshot_id.epoch, part.snapshot_id.end_offset)
        if snapshot != fetch.snapshot or part.position != fetch.position:
            return
        s.fetch_deadline_ms = now_ms + self.config.fetch_timeout_ms
        s.last_fetch_ok_ms = now_ms
        data = bytes(part.unaligned_records or b"")
        with open(fetch.part, "r+b" if fetch.part.exists() else "wb") as f:
            f.seek(fetch.position)
            f.write(data)
        fetch.position += len(data)
        if fetch.position >= part.size:
            self.log.install_fetched_snapshot(snapshot, fetch.part)
            s.snapshot_fetch = None
            self._replay_voters(self.log.start_offset)
            self.high_watermark = s.high_watermark = max(self.high_watermark, snapshot.offset)
            log.info(
                "raft node %d: installed snapshot %s from leader %d", self.node_id, snapshot, destination
            )
            self._changed()
