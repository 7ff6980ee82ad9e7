"""The quorum controller (Kafka's QuorumController) on the Raft leader of the controller quorum.

Every controller replays the committed log into its `MetadataState`. The Raft leader becomes the active
controller once its replay has reached the start of its epoch (everything before its LeaderChange entry is
committed and replayed), as Kafka's Raft client tells its listener of the leadership only once the listener
has read up to the epoch start offset. On a new log that is at once, so the bootstrap records follow the
LeaderChange entry before the voters have acknowledged it: waiting for its commit left a high watermark
with no metadata.version below it, which a Kafka broker's MetadataLoader reports as a fault ("Unknown
metadata version for FeaturesImage"). On activation:
- if the log holds no metadata.version yet (a new cluster), it appends the bootstrap records of the
  formatter's bootstrap snapshot (FeatureLevelRecords, SCRAM credentials) in one metadata transaction
  (KIP-868), followed, when eligible.leader.replicas.version is above 0, by the cluster-level
  min.insync.replicas ConfigRecord of this controller's static value (KIP-966), as Kafka's
  ActivationRecordsGenerator does, so every reader of the log finds them;
- every registered broker gets a fresh session (heartbeat times are not in the log).

The active controller applies its own records to its state as it appends them (so the next decision sees
them) and answers the request once they are committed. Deciding and appending happen without yielding to
the event loop, so decisions never interleave and each change is one batch (one append, however many
partitions). When the node stops leading, its state may hold records a new leader will truncate: it is
rebuilt from the committed log. Brokers whose session (`broker.session.timeout.ms`) lapses are fenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from strom.cluster.election import NotControllerError
from strom.cluster.kraft.decisions import Change, ControllerRules
from strom.cluster.kraft.loader import LogReplayer
from strom.cluster.kraft.snapshots import SnapshotWriter
from strom.config import BrokerConfig
from strom.metadata.errors import MetadataRecordError
from strom.metadata.image import MetadataState
from strom.metadata.records import BeginTransactionRecord, ConfigRecord, EndTransactionRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import read_snapshot
from strom.protocol.errors import ErrorCode, KafkaError
from strom.raft.core import NotLeaderError
from strom.raft.node import RaftNode
from strom.raft.states import Leader
from strom.raft.voter_changes import upgrade_kraft_version

__all__ = ["QuorumController"]

log = logging.getLogger("strom.kraft.controller")

METADATA_TRANSACTIONS_LEVEL = 13  # 3.6-IV1: BeginTransaction/EndTransaction (KIP-868)
COMMIT_TIMEOUT_S = 30.0


class QuorumController:
    """`start()`, `stop()`, `is_active`, `state`, `rules`, `write(change)`, `heartbeat_seen(id)`."""

    def __init__(
        self,
        raft: RaftNode,
        config: BrokerConfig,
        cluster_id: str,
        bootstrap_snapshot: Path | None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.raft = raft
        self.config = config
        self.cluster_id = cluster_id
        self.bootstrap_snapshot = bootstrap_snapshot
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_fatal = on_fatal or (lambda exc: log.critical("metadata replay failed: %s", exc))
        self.state = MetadataState()
        self.rules = ControllerRules(self.state, config, self.rng)
        self.replayer = LogReplayer(raft.core.log, self.state)
        self.snapshots = SnapshotWriter(raft.core, config, clock=clock)
        self.active_epoch = -1
        self.session_timeout_ms = int(config.get("broker.session.timeout.ms"))
        self._sessions: dict[int, int] = {}
        # called with the state after every replay and append (the ACL store reloads the authorizer)
        self.watchers: list[Callable[[MetadataState], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="quorum-controller")

    async def stop(self) -> None:
        for task in [self._task, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @property
    def is_active(self) -> bool:
        core = self.raft.core
        return self.active_epoch >= 0 and isinstance(core.state, Leader) and core.epoch == self.active_epoch

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _run(self) -> None:
        tick = max(0.05, min(0.5, self.session_timeout_ms / 4000))
        while True:
            try:
                self._step()
            except MetadataRecordError as exc:
                self.on_fatal(exc)
                return
            except Exception:
                log.exception("quorum controller step failed")
            await self.raft.wait_changed(tick)

    def _step(self) -> None:
        core = self.raft.core
        leading = isinstance(core.state, Leader)
        if self.active_epoch >= 0 and not (leading and core.epoch == self.active_epoch):
            log.info("controller %d is no longer active (epoch %d)", core.node_id, self.active_epoch)
            self.active_epoch = -1
            self.state = MetadataState()
            self.rules.state = self.state
            self.replayer.reset(self.state)
        self.replayer.catch_up(core.high_watermark)
        self._notify_watchers()
        try:
            self.snapshots.maybe_snapshot(self.replayer)
        except OSError:  # a snapshot that cannot be written leaves the log as it is
            log.exception("cannot write a metadata snapshot")
        state = core.state
        if (
            self.active_epoch < 0
            and isinstance(state, Leader)
            and self.replayer.next_offset >= state.epoch_start_offset
        ):
            self._activate(state.epoch)
        if self.is_active:
            self._fence_expired()

    def _activate(self, epoch: int) -> None:
        self.active_epoch = epoch
        now = self.now_ms()
        self._sessions = dict.fromkeys(self.state.brokers, now)
        log.info("controller %d is active in epoch %d", self.raft.core.node_id, epoch)
        if self.state.metadata_version == 0:
            records = self._bootstrap_records()
            if records:
                # appended here, before this step yields, so nothing this controller writes (a broker's
                # registration, an idle NoOpRecord) can come first: a reader that finds a committed data
                # record with no metadata.version below it fails ("Unknown metadata version for
                # FeaturesImage" in Kafka's MetadataLoader)
                self.append(records)

    def _bootstrap_records(self) -> list[ApiMessageAndVersion]:
        if self.bootstrap_snapshot is None or not self.bootstrap_snapshot.exists():
            log.warning("no bootstrap snapshot: the cluster starts without finalized features")
            return []
        records = list(read_snapshot(self.bootstrap_snapshot).records)
        level = next(
            (
                rec.message.feature_level
                for rec in records
                if getattr(rec.message, "name", None) == "metadata.version"
                and hasattr(rec.message, "feature_level")
            ),
            0,
        )
        elr = any(
            getattr(rec.message, "name", None) == "eligible.leader.replicas.version"
            and getattr(rec.message, "feature_level", 0) > 0
            for rec in records
        )
        if elr:
            # KIP-966: a cluster that starts with the ELR on has a cluster-level min.insync.replicas, this
            # controller's static value (Kafka's ActivationRecordsGenerator)
            value = str(self.config.get("min.insync.replicas"))
            record = ConfigRecord(resource_type=4, resource_name="", name="min.insync.replicas", value=value)
            records.append(ApiMessageAndVersion(record, 0))
        if level >= METADATA_TRANSACTIONS_LEVEL:
            records = [
                ApiMessageAndVersion(BeginTransactionRecord(name="Bootstrap records"), 0),
                *records,
                ApiMessageAndVersion(EndTransactionRecord(), 0),
            ]
        return records

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("controller write failed: %r", task.exception())

    # -- sessions --------------------------------------------------------------------------------------------
    def heartbeat_seen(self, broker_id: int) -> None:
        self._sessions[broker_id] = self.now_ms()

    def has_live_session(self, broker_id: int) -> bool:
        seen = self._sessions.get(broker_id)
        return seen is not None and self.now_ms() - seen < self.session_timeout_ms

    def _fence_expired(self) -> None:
        now = self.now_ms()
        for broker_id, reg in list(self.state.brokers.items()):
            if reg.fenced:
                continue
            seen = self._sessions.setdefault(broker_id, now)
            if now - seen > self.session_timeout_ms:
                log.info("fencing broker %d: no heartbeat for %d ms", broker_id, now - seen)
                self._spawn(self.write(Change(self.rules.fence(reg))))

    # -- writes ----------------------------------------------------------------------------------------------
    def append(self, records: list[ApiMessageAndVersion]) -> int:
        """Append and apply at once (no await between a decision and its append); the last offset."""
        if not self.is_active:
            raise NotControllerError("This is not the active controller.")
        base = self.raft.core.log.end_offset
        try:
            last = self.raft.core.append(records, self.now_ms())
        except NotLeaderError as exc:
            raise NotControllerError(str(exc)) from None
        self.raft.core.notify()
        for i, record in enumerate(records):
            self.state.replay(record, base + i)
        self._notify_watchers()
        return last

    def upgrade_kraft_version(self, level: int, validate_only: bool) -> bool:
        """KIP-853's kraft.version upgrade through this controller's Raft leadership (UpdateFeatures)."""
        if not self.is_active:
            raise NotControllerError("This is not the active controller.")
        try:
            done = upgrade_kraft_version(
                self.raft.core, self.active_epoch, level, validate_only, self.now_ms()
            )
        except NotLeaderError:
            # Kafka's NotLeaderException is no API error: its controller answers UNKNOWN_SERVER_ERROR
            raise KafkaError("null", code=ErrorCode.unknown_server_error) from None
        self.raft.core.notify()
        return done

    def _notify_watchers(self) -> None:
        for watcher in self.watchers:
            try:
                watcher(self.state)
            except Exception:  # a watcher's failure must not stop the controller
                log.exception("metadata watcher failed")

    async def wait_committed(self, offset: int) -> None:
        epoch = self.active_epoch
        committed = await self.raft.wait_committed(offset, COMMIT_TIMEOUT_S)
        if not committed:
            if self.active_epoch != epoch or not self.is_active:
                raise NotControllerError("The active controller changed before the change was committed.")
            raise KafkaError(
                "The metadata change was not committed in time.", code=ErrorCode.request_timed_out
            )

    async def write(self, change: Change) -> object:
        """Append `change.records` as one batch and wait until they are committed; `change.result`."""
        if change.records:
            await self.wait_committed(self.append(change.records))
        return change.result
