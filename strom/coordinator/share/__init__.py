"""Share groups (KIP-932, Kafka's queues) beside the classic and consumer groups of `strom.coordinator`:
membership and assignment in the group coordinator (`heartbeat`, `admin`, `loading`, records in
__consumer_offsets), record acquisition on each partition's leader (`partition`, `sessions`, `manager`),
and the share coordinator keeping each share-partition's state in __share_group_state (`state_records`,
`state_core`, `state_coordinator`, `persister`)."""
