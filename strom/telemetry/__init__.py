"""Client telemetry (KIP-714): client-metrics subscriptions, the pushed OTLP metrics and their export."""
