"""Prometheus metrics of one broker (`metrics.port`): per-topic traffic, per-API requests and latency,
partition health, controller, log sizes and consumer group lag, served at /metrics with /healthz and
/readyz. Every broker has its own CollectorRegistry, so several brokers can share a process."""

from strom.metrics.broker_metrics import BrokerMetrics

__all__ = ["BrokerMetrics"]
