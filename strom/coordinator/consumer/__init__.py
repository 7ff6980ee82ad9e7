"""Consumer groups (KIP-848, the consumer rebalance protocol) beside the classic groups of
`strom.coordinator.group`: members heartbeat with ConsumerGroupHeartbeat, the coordinator assigns
partitions and reconciles each member towards its target; records in __consumer_offsets as Kafka writes
them."""
