"""Client-metrics subscriptions and the client instances they apply to (KIP-714, Kafka's
ClientMetricsManager and ClientMetricsConfigs).

A subscription is a CLIENT_METRICS config resource (type 16) set with IncrementalAlterConfigs (Kafka's
`kafka-client-metrics --alter --name N --metrics ... --interval ... --match ...`) with three keys:
`metrics` (metric name prefixes; `*` for every metric), `interval.ms` (push interval, 100 to 3600000,
default 300000) and `match` (`selector=regex` pairs; every pair must match the client, whole-value
regex; no pair matches every client). Selectors: client_instance_id, client_id, client_software_name,
client_software_version, client_source_address, client_source_port. Removing every key deletes the
subscription. Subscriptions are kept in `client-metrics.json` in the first log dir.

A client instance (one id per client, assigned by the broker when GetTelemetrySubscriptions carries the
zero id) gets the union of the metric prefixes of the subscriptions matching it and the smallest of their
intervals; the subscription id is a CRC-32C of that, so it changes whenever what the client must push
changes and a push with an old id answers UNKNOWN_SUBSCRIPTION_ID. Pushes sooner than the interval answer
THROTTLING_QUOTA_EXCEEDED, unless the client is terminating (its last push) or it is the first push
after a GetTelemetrySubscriptions (clients jitter the interval by half either way, Kafka's rule).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from strom.protocol.errors import InvalidConfigError

METRICS, INTERVAL_MS, MATCH = "metrics", "interval.ms", "match"
KEYS = (METRICS, INTERVAL_MS, MATCH)
DEFAULT_INTERVAL_MS = 300_000
DEFAULTS = {METRICS: "", INTERVAL_MS: str(DEFAULT_INTERVAL_MS), MATCH: ""}
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 3_600_000
SELECTORS = (
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
)
ALL_METRICS = "*"
FILE_NAME = "client-metrics.json"


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def validate(name: str, configs: Mapping[str, str]) -> None:
    """Kafka's ClientMetricsConfigs.validate: InvalidConfigError with Kafka's messages."""
    if not name:
        raise InvalidConfigError("Subscription name can't be empty")
    for key, value in configs.items():
        if key not in KEYS:
            raise InvalidConfigError(f"Unknown client metrics configuration: {key}")
        if key == INTERVAL_MS:
            try:
                interval = int(value)
            except ValueError:
                raise InvalidConfigError(
                    f"Invalid value {value} for configuration {key}: Not a number of type INT"
                ) from None
            if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
                raise InvalidConfigError(
                    f"Invalid value {interval} for {INTERVAL_MS}, interval must be between"
                    f" {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS} (1 hour)"
                )
        if key == MATCH:
            parse_match(value)


def parse_match(raw: str) -> dict[str, re.Pattern[str]]:
    patterns: dict[str, re.Pattern[str]] = {}
    for item in _items(raw):
        selector, sep, pattern = item.partition("=")
        selector = selector.strip()
        if not sep or selector not in SELECTORS:
            raise InvalidConfigError(f"Illegal client matching pattern: {item}")
        try:
            patterns[selector] = re.compile(pattern.strip())
        except re.error as exc:
            raise InvalidConfigError(f"Illegal regex pattern: {pattern.strip()} ({exc})") from None
    return patterns


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """What a subscription's `match` can select on."""

    client_instance_id: uuid.UUID
    client_id: str
    source_address: str
    source_port: str = ""
    software_name: str = ""
    software_version: str = ""

    def selector(self, name: str) -> str:
        return {
            "client_instance_id": str(self.client_instance_id),
            "client_id": self.client_id,
            "client_software_name": self.software_name,
            "client_software_version": self.software_version,
            "client_source_address": self.source_address,
            "client_source_port": self.source_port,
        }[name]


@dataclass(slots=True)
class ClientInstance:
    """One client's subscription as last answered, and its pushes."""

    identity: ClientIdentity
    subscription_id: int = 0
    metrics: tuple[str, ...] = ()
    interval_ms: int = DEFAULT_INTERVAL_MS
    last_push_ms: int = -1
    last_get_ms: int = -1
    last_seen_ms: int = 0
    terminated: bool = False


@dataclass
class ClientMetricsSubscriptions:
    """The subscriptions (persisted in `path`) and the client instances seen lately."""

    path: Path | None
    clock: Callable[[], float]
    configs: dict[str, dict[str, str]] = field(default_factory=dict)
    instances: dict[uuid.UUID, ClientInstance] = field(default_factory=dict)
    # instances not heard from for this long are forgotten (Kafka: 3 push intervals, at least a minute)
    expiry_intervals: int = 3

    @classmethod
    def load(cls, path: Path | None, clock: Callable[[], float]) -> ClientMetricsSubscriptions:
        configs: dict[str, dict[str, str]] = {}
        if path is not None and path.exists():
            stored = json.loads(path.read_text())
            configs = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in stored.items()}
        return cls(path, clock, configs)

    # --- configs (CLIENT_METRICS resources) ------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.configs)

    def get(self, name: str) -> dict[str, str]:
        return dict(self.configs.get(name, {}))

    def replace(self, name: str, configs: Mapping[str, str | None], *, validate_only: bool = False) -> None:
        """Make `configs` the subscription's whole config set (None values dropped); empty deletes it."""
        kept = {k: str(v) for k, v in configs.items() if v is not None}
        validate(name, kept)
        if validate_only:
            return
        if kept:
            self.configs[name] = kept
        else:
            self.configs.pop(name, None)
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.configs, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    # --- client instances ------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def instance(self, identity: ClientIdentity) -> ClientInstance:
        """The client's instance with its subscription computed now (created if new)."""
        now = self._now_ms()
        self._expire(now)
        inst = self.instances.get(identity.client_instance_id)
        if inst is None:
            inst = ClientInstance(identity)
            self.instances[identity.client_instance_id] = inst
        inst.identity = identity
        inst.last_seen_ms = now
        metrics: set[str] = set()
        interval = 0
        for _name, configs in sorted(self.configs.items()):
            if not self._matches(configs, identity):
                continue
            wanted = _items(configs.get(METRICS, ""))
            if not wanted:
                continue
            metrics.update("" if m == ALL_METRICS else m for m in wanted)
            value = int(configs.get(INTERVAL_MS, DEFAULT_INTERVAL_MS))
            interval = value if interval == 0 else min(interval, value)
        # "" (every metric) makes other prefixes redundant, as Kafka sends it alone
        inst.metrics = ("",) if "" in metrics else tuple(sorted(metrics))
        inst.interval_ms = interval or DEFAULT_INTERVAL_MS
        digest = f"{','.join(inst.metrics)}|{inst.interval_ms}|{identity.client_instance_id}".encode()
        crc = crc32c.crc32c(digest)
        inst.subscription_id = crc - (1 << 32) if crc >= 1 << 31 else crc  # an int32 on the wire
        return inst

    @staticmethod
    def _matches(configs: Mapping[str, str], identity: ClientIdentity) -> bool:
        patterns = parse_match(configs.get(MATCH, ""))
        return all(p.fullmatch(identity.selector(selector)) for selector, p in patterns.items())

    def _expire(self, now_ms: int) -> None:
        for key, inst in list(self.instances.items()):
            if now_ms - inst.last_seen_ms > max(self.expiry_intervals * inst.interval_ms, 60_000):
                del self.instances[key]
