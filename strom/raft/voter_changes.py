"""Dynamic voters on the leader (KIP-853): AddRaftVoter (80, v0-1), RemoveRaftVoter (81, v0) and
UpdateRaftVoter (82, v0), as Kafka 4.4's KafkaRaftClient with its AddVoterHandler, RemoveVoterHandler and
UpdateVoterHandler decide them. Sans-io: the functions read the core's state and append through it; the
asyncio shell (`strom.raft.node`) asks the new voter its ApiVersions and waits for the commit.

Checks, in Kafka's order, with Kafka's error codes and messages:
- the request's cluster id (INCONSISTENT_CLUSTER_ID), this replica is the leader (NOT_LEADER_OR_FOLLOWER;
  UpdateRaftVoter checks its `current_leader_epoch`: FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), the
  voter key has an id and a directory id (INVALID_REQUEST), Add/Update name an endpoint on the leader's
  listener (INVALID_REQUEST);
- one voter change at a time: another AddRaftVoter waiting for its new voter's ApiVersions, a leader
  whose high watermark is not yet known in its epoch, or a VotersRecord not yet committed (offset at or
  above the high watermark) answer REQUEST_TIMED_OUT; kraft.version 0 answers UNSUPPORTED_VERSION;
- Add: a voter id already in the set is DUPLICATE_VOTER; the new voter must answer ApiVersions with a
  kraft.version range holding the finalized level (else INVALID_REQUEST; no answer: REQUEST_TIMED_OUT)
  and must be an observer that has caught up with the leader's log end within the last hour (Kafka's
  LeaderState.isReplicaCaughtUp; else REQUEST_TIMED_OUT);
- Remove: the voter (id and directory id) must be in the set and not the last one (VOTER_NOT_FOUND);
- Update: the voter's kraft.version range must hold the finalized level (INVALID_REQUEST) and the voter
  (id and directory id) must be in the set (VOTER_NOT_FOUND). At kraft.version 0 (static voters,
  KAFKA-16538) the leader only keeps what the voter sent in memory and answers NONE; Kafka 4.4's voters send
  it once to each new leader, and so do Strom's.
kraft.version 0 -> 1 (`kafka-features upgrade --feature kraft.version=1`, Kafka 4.4's
LeaderState.maybeAppendUpgradedKRaftVersion): the leader builds the voter set from the static voters, its
own entry and what the others told it with UpdateRaftVoter in this epoch; every voter must support the new
level (INVALID_UPDATE_VERSION "Invalid upgrade of kraft.version to KRAFT_VERSION_1 because not all of the
voters support it") and have a known directory id (Kafka's IllegalStateException: UNKNOWN_SERVER_ERROR).
Then one control batch holds the KRaftVersionRecord and the first VotersRecord, both in force at once.
Then the leader appends a VotersRecord with the new set (in force at once, committed or not). Add and
Remove answer once it is committed (AddRaftVoter v1 with `ack_when_committed` false: once appended);
Update answers at once. A leader that removed itself resigns once the removal is committed (the core's
poll does it).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.protocol.errors import ErrorCode, KafkaError
from strom.raft.core import NotLeaderError
from strom.raft.messages import build, item, response_class, zero_throttle
from strom.raft.states import Leader
from strom.raft.voters import ZERO_UUID, Voter, VoterSet

if TYPE_CHECKING:
    from strom.raft.core import RaftCore

__all__ = [
    "ADD_RAFT_VOTER",
    "KRAFT_VERSION_FEATURE",
    "REMOVE_RAFT_VOTER",
    "UPDATE_RAFT_VOTER",
    "AddVoterPlan",
    "add_voter_response",
    "finish_add_voter",
    "handle_add_voter",
    "handle_remove_voter",
    "handle_update_voter",
    "remove_voter_response",
    "upgrade_kraft_version",
]

KRAFT_VERSION_FEATURE = "kraft.version"

ADD_RAFT_VOTER, REMOVE_RAFT_VOTER, UPDATE_RAFT_VOTER = 80, 81, 82
CAUGHT_UP_WITHIN_MS = 60 * 60 * 1000  # Kafka: an observer that fetched caught up within the last hour


@dataclass(frozen=True, slots=True)
class AddVoterPlan:
    """An AddRaftVoter that passed the leader's checks: ask the new voter its ApiVersions next."""

    voter_id: int
    directory_id: uuid.UUID
    endpoints: dict[str, tuple[str, int]]
    address: tuple[str, int]


def _kafka_uuid(value: uuid.UUID | None) -> str:
    return base64.urlsafe_b64encode((value or ZERO_UUID).bytes).decode().rstrip("=")


def replica_key(node_id: int, directory_id: uuid.UUID | None) -> str:
    """Kafka's ReplicaKey.toString()."""
    if directory_id in (None, ZERO_UUID):
        directory = "Optional.empty"
    else:
        directory = f"Optional[{_kafka_uuid(directory_id)}]"
    return f"ReplicaKey(id={node_id}, directoryId={directory})"


def _voter_keys(voters: VoterSet) -> str:
    return "[" + ", ".join(replica_key(v.node_id, v.directory_id) for v in voters.voters.values()) + "]"


def _endpoints_text(endpoints: dict[str, tuple[str, int]]) -> str:
    inner = ", ".join(
        f"ListenerName({name})={host}/<unresolved>:{port}" for name, (host, port) in endpoints.items()
    )
    return f"Endpoints(endpoints={{{inner}}})"


def add_voter_response(version: int, error: ErrorCode, message: str | None = None) -> Any:
    cls = response_class(ADD_RAFT_VOTER, version)
    return build(cls, throttle_time=zero_throttle(), error_code=error, error_message=message)


def remove_voter_response(version: int, error: ErrorCode, message: str | None = None) -> Any:
    cls = response_class(REMOVE_RAFT_VOTER, version)
    return build(cls, throttle_time=zero_throttle(), error_code=error, error_message=message)


def _cluster_error(core: RaftCore, request: Any) -> str | None:
    cluster_id = getattr(request, "cluster_id", None)
    if cluster_id is None or cluster_id == core.cluster_id:
        return None
    return f'The given id "{cluster_id}" doesn\'t match the cluster id "{core.cluster_id}"'


def _change_error(core: RaftCore, action: str) -> tuple[ErrorCode, str] | None:
    """The checks every voter change makes on the leader (Kafka's handlers' steps 1-3)."""
    s = core.state
    assert isinstance(s, Leader)
    if s.voter_change_pending:
        return (
            ErrorCode.request_timed_out,
            "Request timed out waiting for leader to handle previous voter change request",
        )
    if s.high_watermark < 0:
        return (
            ErrorCode.request_timed_out,
            "Request timed out waiting for leader to establish HWM and fence previous voter changes",
        )
    if core.kraft_version < 1:
        return (
            ErrorCode.unsupported_version,
            f"Cluster doesn't support {action} voter because the kraft.version feature is "
            f"{core.kraft_version}",
        )
    offset = core.voter_history.latest_offset
    if offset >= s.high_watermark:
        return (
            ErrorCode.request_timed_out,
            f"Request timed out waiting for voters to commit the latest voter change at Optional[{offset}] "
            f"with HWM {s.high_watermark}",
        )
    return None


def _leader_error(core: RaftCore, epoch: int | None = None) -> ErrorCode:
    return core._leader_only_error(core.epoch if epoch is None else epoch)


def handle_add_voter(core: RaftCore, request: Any, now_ms: int) -> Any | AddVoterPlan:
    """The first half of AddRaftVoter: a response (refused), or the plan to ask the new voter."""
    version = int(request.__version__)
    message = _cluster_error(core, request)
    if message is not None:
        return add_voter_response(version, ErrorCode.inconsistent_cluster_id, message)
    error = _leader_error(core)
    if error is not ErrorCode.none:
        return add_voter_response(version, error)
    directory_id = request.voter_directory_id
    if request.voter_id < 0 or directory_id in (None, ZERO_UUID):
        return add_voter_response(
            version, ErrorCode.invalid_request, "Add voter request didn't include a valid voter"
        )
    endpoints = {str(ep.name): (str(ep.host), int(ep.port)) for ep in request.listeners}
    address = endpoints.get(core.listener_name)
    if address is None:
        return add_voter_response(
            version,
            ErrorCode.invalid_request,
            f"Add voter request didn't include the endpoint ({_endpoints_text(endpoints)}) for the default "
            f"listener ListenerName({core.listener_name})",
        )
    refusal = _change_error(core, "adding")
    if refusal is not None:
        return add_voter_response(version, *refusal)
    voters = core.voters
    if request.voter_id in voters:
        return add_voter_response(
            version,
            ErrorCode.duplicate_voter,
            f"The voter id for {replica_key(request.voter_id, directory_id)} is already part of the set of "
            f"voters {_voter_keys(voters)}.",
        )
    s = core.state
    assert isinstance(s, Leader)
    s.voter_change_pending = True
    return AddVoterPlan(int(request.voter_id), directory_id, endpoints, address)


def finish_add_voter(
    core: RaftCore,
    plan: AddVoterPlan,
    version: int,
    api_versions_error: ErrorCode | None,
    kraft_versions: tuple[int, int] | None,
    now_ms: int,
) -> Any | int:
    """The second half, once the new voter answered ApiVersions (`api_versions_error` None: it did not
    answer): a response (refused), or the offset of the VotersRecord appended."""
    s = core.state
    if not isinstance(s, Leader):
        return add_voter_response(version, ErrorCode.not_leader_or_follower)
    s.voter_change_pending = False
    key = replica_key(plan.voter_id, plan.directory_id)
    if api_versions_error is None:
        return add_voter_response(
            version, ErrorCode.request_timed_out, f"New voter {key} is not ready to receive requests"
        )
    if api_versions_error is not ErrorCode.none:
        return add_voter_response(
            version,
            ErrorCode.request_timed_out,
            "Aborted add voter operation for since API_VERSIONS returned an error "
            f"{api_versions_error.name.upper()}",
        )
    finalized = core.kraft_version
    if kraft_versions is None or not kraft_versions[0] <= finalized <= kraft_versions[1]:
        low, high = kraft_versions or (0, 0)
        return add_voter_response(
            version,
            ErrorCode.invalid_request,
            f"Aborted add voter operation for {key} since the kraft.version range (min: {low}, max: {high} "
            f"doesn't support the finalized version {finalized}",
        )
    observer = s.observers.get(plan.voter_id)
    caught_up = (
        observer is not None
        and (observer.directory_id in (None, ZERO_UUID) or observer.directory_id == plan.directory_id)
        and observer.last_caught_up_ms > 0
        and observer.last_fetch_ms > now_ms - CAUGHT_UP_WITHIN_MS
    )
    if not caught_up:
        return add_voter_response(
            version,
            ErrorCode.request_timed_out,
            f"Aborted add voter operation for {key} since it is lagging behind",
        )
    refusal = _change_error(core, "adding")  # nothing changed while the ApiVersions was out
    if refusal is not None:
        return add_voter_response(version, *refusal)
    voter = Voter(plan.voter_id, plan.directory_id, plan.endpoints, kraft_versions)
    return core.append_voters(core.voters.with_voter(voter), now_ms)


def handle_remove_voter(core: RaftCore, request: Any, now_ms: int) -> Any | int:
    """RemoveRaftVoter: a response (refused), or the offset of the VotersRecord appended."""
    version = int(request.__version__)
    message = _cluster_error(core, request)
    if message is not None:
        return remove_voter_response(version, ErrorCode.inconsistent_cluster_id, message)
    error = _leader_error(core)
    if error is not ErrorCode.none:
        return remove_voter_response(version, error)
    directory_id = request.voter_directory_id
    if request.voter_id < 0 or directory_id in (None, ZERO_UUID):
        return remove_voter_response(
            version, ErrorCode.invalid_request, "Remove voter request didn't include a valid voter"
        )
    refusal = _change_error(core, "removing")
    if refusal is not None:
        return remove_voter_response(version, *refusal)
    voters = core.voters
    current = voters.voters.get(request.voter_id)
    if current is None or current.directory_id != directory_id or len(voters) <= 1:
        return remove_voter_response(
            version,
            ErrorCode.voter_not_found,
            f"Cannot remove voter {replica_key(request.voter_id, directory_id)} from the set of voters "
            f"{_voter_keys(voters)}",
        )
    return core.append_voters(voters.without(request.voter_id), now_ms)


def handle_update_voter(core: RaftCore, request: Any, now_ms: int) -> Any:
    """UpdateRaftVoter: answered at once (the VotersRecord is appended, not yet committed)."""
    version = int(request.__version__)
    cls = response_class(UPDATE_RAFT_VOTER, version)

    def answer(error: ErrorCode) -> Any:
        leader_cls = item(cls, "current_leader")
        address = core.address_of(core.leader_id) if core.leader_id >= 0 else None
        current = leader_cls(
            leader_id=core.leader_id,
            leader_epoch=core.epoch,
            host=address[0] if address else "",
            port=address[1] if address else -1,
        )
        return build(cls, throttle_time=zero_throttle(), error_code=error, current_leader=current)

    if _cluster_error(core, request) is not None:
        return answer(ErrorCode.inconsistent_cluster_id)
    error = _leader_error(core, int(request.current_leader_epoch))
    if error is not ErrorCode.none:
        return answer(error)
    directory_id = request.voter_directory_id
    if request.voter_id < 0 or directory_id in (None, ZERO_UUID):
        return answer(ErrorCode.invalid_request)
    endpoints = {str(ep.name): (str(ep.host), int(ep.port)) for ep in request.listeners}
    if core.listener_name not in endpoints:
        return answer(ErrorCode.invalid_request)
    feature = request.k_raft_version_feature
    low, high = int(feature.min_supported_version), int(feature.max_supported_version)
    if low < 0 or high < 0 or high < low:
        return answer(ErrorCode.invalid_request)
    if core.kraft_version < 1:
        return _update_static_voter(core, request, endpoints, (low, high), answer)
    refusal = _change_error(core, "updating")
    if refusal is not None:
        return answer(refusal[0])
    if not low <= core.kraft_version <= high:
        return answer(ErrorCode.invalid_request)
    voters = core.voters
    current = voters.voters.get(request.voter_id)
    if current is None or current.directory_id != directory_id:
        return answer(ErrorCode.voter_not_found)
    updated = Voter(current.node_id, directory_id, endpoints, (low, high))
    core.append_voters(voters.with_voter(updated), now_ms)
    return answer(ErrorCode.none)


def _update_static_voter(
    core: RaftCore,
    request: Any,
    endpoints: dict[str, tuple[str, int]],
    versions: tuple[int, int],
    answer: Any,
) -> Any:
    """UpdateRaftVoter at kraft.version 0 (KAFKA-16538, Kafka 4.4): nothing is written; the leader keeps the
    static voter's directory id, endpoints and kraft.version range in memory and answers NONE."""
    s = core.state
    assert isinstance(s, Leader)
    if s.high_watermark < 0:
        return answer(ErrorCode.request_timed_out)
    if not versions[0] <= 0 <= versions[1]:
        return answer(ErrorCode.invalid_request)
    current = core.voters.voters.get(request.voter_id)
    directory_id = request.voter_directory_id
    if current is None or current.directory_id not in (None, directory_id):
        return answer(ErrorCode.voter_not_found)
    voter_id = int(request.voter_id)
    core.volatile_voters[voter_id] = Voter(voter_id, directory_id, endpoints, versions)
    return answer(ErrorCode.none)


def _kraft_version_name(level: int) -> str:
    return f"KRAFT_VERSION_{level}"  # Kafka's KRaftVersion enum, as its messages print it


def upgrade_kraft_version(core: RaftCore, epoch: int, level: int, validate_only: bool, now_ms: int) -> bool:
    """Raise kraft.version to `level` on the leader of `epoch` (Kafka's KafkaRaftClient.upgradeKRaftVersion);
    False when there is nothing to do (already at that level), True once checked (and appended unless
    `validate_only`). KafkaError carries Kafka's error code and message; NotLeaderError a stale epoch."""
    s = core.state
    if not isinstance(s, Leader) or s.epoch != epoch:
        raise NotLeaderError(
            f"Upgrade kraft version failed because the given epoch {epoch} is stale. Current leader epoch "
            f"is {core.epoch}"
        )
    current = core.kraft_version
    if level == current:
        return False
    if current > level:
        raise KafkaError(
            f"Invalid upgrade of {KRAFT_VERSION_FEATURE} from version {_kraft_version_name(current)} to "
            f"{_kraft_version_name(level)} because the new version is a downgrade",
            code=ErrorCode.invalid_update_version,
        )
    voters = _volatile_voters(core)
    if not all(v.kraft_versions[0] <= level <= v.kraft_versions[1] for v in voters.voters.values()):
        raise KafkaError(
            f"Invalid upgrade of {KRAFT_VERSION_FEATURE} to {_kraft_version_name(level)} because not all of "
            "the voters support it",
            code=ErrorCode.invalid_update_version,
        )
    missing = sorted(v.node_id for v in voters.voters.values() if v.directory_id in (None, ZERO_UUID))
    if missing:
        # Kafka throws IllegalStateException here, which its controller answers UNKNOWN_SERVER_ERROR
        # with no message
        raise KafkaError("null", code=ErrorCode.unknown_server_error)
    if not validate_only:
        core.append_kraft_version(level, voters, now_ms)
    return True


def _volatile_voters(core: RaftCore) -> VoterSet:
    """The static voters as this leader knows them in its epoch: its own entry (directory id, endpoints,
    kraft.version range) and each other voter's last UpdateRaftVoter (Kafka's KRaftVersionUpgrade.Voters)."""
    voters = core.voters
    if core.local_endpoints and core.node_id in voters.voters:
        voters = voters.with_voter(core.local_voter())
    for voter in core.volatile_voters.values():
        if voter.node_id in voters.voters:
            voters = voters.with_voter(voter)
    return voters
