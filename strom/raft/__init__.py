"""Kafka's Raft (KRaft) for the `__cluster_metadata-0` log (KIP-595, KIP-630, KIP-853, KIP-996).

- `quorum_state`: the `quorum-state` file (epoch, leader, vote), Kafka's JSON format.
- `voters`: the voter set, from static `controller.quorum.voters` or from VotersRecords (KIP-853).
- `metadata_log`: the replicated log over `strom.storage` segments, and its snapshots (KIP-630).
- `states`: the epoch states (unattached, prospective, candidate, leader, follower, resigned).
- `core`: the sans-io protocol engine (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot,
  DescribeQuorum), driven by requests, responses and an injected clock; `requests` builds what it sends,
  `describe_quorum` answers DescribeQuorum, `messages` builds kio messages of any version.
- `node`: the asyncio shell (timers, outbound connections, long-polling fetches).
- `controller_server`: a controller node's CONTROLLER listener serving the quorum's APIs.

The package knows nothing of topics: records are opaque metadata records to it.
"""
