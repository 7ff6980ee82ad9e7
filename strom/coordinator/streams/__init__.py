"""Streams groups (KIP-1071, the streams rebalance protocol) beside the classic, consumer and share groups:
Kafka Streams members heartbeat with StreamsGroupHeartbeat and send their topology; the coordinator
validates it against the cluster's topics, asks for the internal topics to be created, assigns tasks
(active, standby and warm-up) and reconciles each member towards its target; records in
__consumer_offsets as Kafka 4.4 writes them."""
