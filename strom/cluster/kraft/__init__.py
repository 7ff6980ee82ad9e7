"""KRaft mode (KIP-500, KIP-631): the quorum controller on the Raft leader and the broker-side backend.

- `loader`: follows the committed `__cluster_metadata` log into a `strom.metadata.image.MetadataState`.
- `decisions`: the controller's rules (registration, heartbeats and fencing, topic creation and placement,
  leader election, AlterPartition, producer ids, configs) as pure functions from state to records.
- `controller`: the active controller's shell (activation, bootstrap records, atomic appends, sessions).
- `controller_apis`: the controller listener's BrokerRegistration, BrokerHeartbeat, AlterPartition,
  AllocateProducerIds, and the admin requests served through the `ClusterBackend` handlers.
- `broker`: `KRaftBackend`, the `ClusterBackend` of a broker (`process.roles=broker`).
"""
