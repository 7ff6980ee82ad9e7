"""Kafka's JVM system properties that change what a broker or tool accepts, read the way Kafka's scripts
pass them: `-Dname=value` words in the KAFKA_OPTS environment variable (the last one of a name wins, as on
a JVM command line), so one KAFKA_OPTS serves a Kafka node and a Strom node alike.

- `org.apache.kafka.sasl.oauthbearer.allowed.urls` (Kafka 4.0+, default empty): the comma-separated URLs
  OAUTHBEARER may fetch, the JWKS endpoint a broker validates tokens against (KIP-768) and a tool's token
  endpoint. A URL not listed exactly is refused with Kafka's ConfigException message, so a broker whose
  `sasl.oauthbearer.jwks.endpoint.url` is not allowed does not start.
- `java.security.auth.login.config`: the static JAAS file (strom.security.sasl.jaas_file), and
  `org.apache.kafka.allowed.login.modules` / `org.apache.kafka.disallowed.login.modules`, the login modules
  a JAAS configuration may name.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

ALLOWED_OAUTHBEARER_URLS = "org.apache.kafka.sasl.oauthbearer.allowed.urls"


def system_property(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The value KAFKA_OPTS gives `name` with -D, else `default`."""
    opts = (os.environ if environ is None else environ).get("KAFKA_OPTS", "")
    try:
        words = shlex.split(opts)
    except ValueError:
        words = opts.split()
    prefix = f"-D{name}="
    value = default
    for word in words:
        if word.startswith(prefix):
            value = word[len(prefix) :]
    return value


def url_refusal(config_name: str, url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Kafka's ConfigurationUtils.throwIfURLIsNotAllowed: None when `url` is among the allowed URLs, else
    the message of the ConfigException Kafka throws for it."""
    allowed = {entry.strip() for entry in system_property(ALLOWED_OAUTHBEARER_URLS, "", environ).split(",")}
    if url in allowed:
        return None
    return (
        f"Invalid value {url} for configuration {config_name}: The URL cannot be accessed due to "
        f"restrictions. Update the system property '{ALLOWED_OAUTHBEARER_URLS}' to allow the URL to be "
        "accessed."
    )


def system_properties(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every `-Dname=value` of KAFKA_OPTS (`-Dname` alone is the empty string, as on a JVM command line;
    the last one of a name wins)."""
    opts = (os.environ if environ is None else environ).get("KAFKA_OPTS", "")
    try:
        words = shlex.split(opts)
    except ValueError:
        words = opts.split()
    found: dict[str, str] = {}
    for word in words:
        if word.startswith("-D") and len(word) > 2:
            name, _, value = word[2:].partition("=")
            found[name] = value
    return found
