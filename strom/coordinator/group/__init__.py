"""The classic consumer-group coordinator: JoinGroup/SyncGroup rebalancing and committed offsets kept in the
internal topic __consumer_offsets, in Kafka's own record formats."""
