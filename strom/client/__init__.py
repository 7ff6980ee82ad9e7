"""A small asyncio Kafka client used by the `strom` CLI, the follower fetcher and tests."""
