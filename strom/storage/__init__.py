"""The durable partition log: Kafka's segment files and indexes, rolling, recovery and retention.

`log.Log` is one partition's log, `log_manager.LogManager` owns every log of a broker. No network code.
"""
