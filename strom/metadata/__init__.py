"""Kafka's KRaft metadata: the records of `__cluster_metadata` (KIP-500, KIP-631), their framing, the
control records of the Raft log (KIP-595, KIP-630, KIP-853) and the storage format (`strom storage`).

- `records` (generated from Kafka's jars by scripts/gen-metadata-records): one dataclass per record.
- `codec`: reads and writes any record at any of its versions; `schema`: the per-version layouts.
- `serde`: Kafka's MetadataRecordSerde framing and the control record key/value.
- `batches`: record batches of the metadata log and snapshots; `errors`: what stops a node.
"""
