"""TLS contexts of SSL listeners (and of the inter-broker client), from Kafka's ssl.* keys, with Python's
`ssl` (OpenSSL).

Keys, read per listener (`listener.name.<name>.<key>` wins over `<key>`):
- key store: `ssl.keystore.type` PEM with `ssl.keystore.location` (a file holding the private key and the
  certificate chain) or inline `ssl.keystore.key` + `ssl.keystore.certificate.chain` (KIP-651);
  `ssl.key.password` decrypts an encrypted key. PKCS12 (`ssl.keystore.location`, `ssl.keystore.password`)
  is read with the `cryptography` package when it is installed. JKS, Kafka's default type, is Java's own
  format and is refused with a message naming PEM and PKCS12.
- trust store: `ssl.truststore.type` PEM with `ssl.truststore.location` or inline
  `ssl.truststore.certificates`, or PKCS12; none: the system's CAs (as Kafka falls back to the JVM's).
- `ssl.client.auth`: none, requested (a certificate is asked for and verified if sent), required.
- `ssl.enabled.protocols`: the lowest and highest of them bound the TLS versions.
- `ssl.cipher.suites`: Kafka's (IANA) names or OpenSSL's; they restrict TLS 1.2 suites (Python's `ssl`
  cannot restrict TLS 1.3 suites, so those are accepted as given).
- `ssl.endpoint.identification.algorithm`: a server does not check its clients' host names (as in Kafka);
  the inter-broker client checks the broker's name when it is `https` (the default).

Kafka's validation messages for contradictory key store settings are kept ("Both SSL key store location and
separate private key are specified.", ...). Key material given inline never touches the disk: it is handed
to OpenSSL through an anonymous memory file (memfd) where Linux has one.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from strom.config import ConfigError

__all__ = ["client_context", "server_context"]

Settings = Callable[[str], Any]
"""A listener's value of an ssl.* key (strom.server.listeners.listener_value bound to one listener)."""

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# Kafka (JSSE) names of the TLS 1.2 suites worth configuring, as OpenSSL names them
_IANA_TO_OPENSSL = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384": "ECDHE-ECDSA-AES256-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": "ECDHE-RSA-AES256-SHA384",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "DHE-RSA-AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
}
_TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
     "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}
)  # fmt: skip
# Kafka's message, with and without its final full stop depending on the case
_PEM_STORE_PASSWORD = (
    "SSL key store password cannot be specified with PEM format, only key password may be specified"
)
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def server_context(settings: Settings, listener: str) -> ssl.SSLContext:
    """The TLS context an SSL listener serves with; ConfigError when its settings do not make one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(ctx, settings)
    _ciphers(ctx, settings)
    if not _load_keystore(ctx, settings):
        raise ConfigError(
            f"SSL listener {listener} needs a key store: set ssl.keystore.location or ssl.keystore.key "
            f"(or listener.name.{listener.lower()}.ssl.keystore.*)"
        )
    ctx.verify_mode = _CLIENT_AUTH[str(settings("ssl.client.auth") or "none").lower()]
    _load_truststore(ctx, settings, ssl.Purpose.CLIENT_AUTH)
    # the server never checks a client's host name: ssl.endpoint.identification.algorithm is for clients
    return ctx


def client_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context this broker connects to other brokers with (the inter-broker listener's keys):
    its key store is the client certificate, its trust store verifies the brokers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _versions(ctx, settings)
    _ciphers(ctx, settings)
    _load_keystore(ctx, settings)
    _load_truststore(ctx, settings, ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = str(settings("ssl.endpoint.identification.algorithm") or "").lower() == "https"
    return ctx


def _versions(ctx: ssl.SSLContext, settings: Settings) -> None:
    enabled = list(settings("ssl.enabled.protocols") or [])
    versions = []
    for name in enabled:
        version = _VERSIONS.get(str(name))
        if version is None:
            raise ConfigError(
                f"Invalid value {name} for configuration ssl.enabled.protocols: unsupported protocol"
            )
        versions.append(version)
    if versions:
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)


def _ciphers(ctx: ssl.SSLContext, settings: Settings) -> None:
    suites = [str(s) for s in settings("ssl.cipher.suites") or []]
    if not suites:
        return
    tls12 = []
    for suite in suites:
        if suite in _TLS13_SUITES:
            continue
        tls12.append(_IANA_TO_OPENSSL.get(suite, suite))
    if not tls12:
        # only TLS 1.3 suites: no TLS 1.2 suite is allowed, so neither is TLS 1.2
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return
    try:
        ctx.set_ciphers(":".join(tls12))
    except ssl.SSLError:
        raise ConfigError(
            f"Invalid value {','.join(suites)} for configuration ssl.cipher.suites: no supported cipher suite"
        ) from None


def _password(settings: Settings, key: str) -> str | None:
    value = settings(key)
    return None if value is None else str(value)


def _load_keystore(ctx: ssl.SSLContext, settings: Settings) -> bool:
    """Kafka's DefaultSslEngineFactory.createKeystore rules; False when no key store is configured."""
    kind = str(settings("ssl.keystore.type") or "JKS").upper()
    location = settings("ssl.keystore.location")
    password = _password(settings, "ssl.keystore.password")
    key_password = _password(settings, "ssl.key.password")
    key = _password(settings, "ssl.keystore.key")
    chain = _password(settings, "ssl.keystore.certificate.chain")
    if key is not None:
        if kind != "PEM":
            raise ConfigError(f"SSL private key can be specified only for PEM, but key store type is {kind}.")
        if chain is None:
            raise ConfigError("SSL private key is specified, but certificate chain is not specified.")
        if location is not None:
            raise ConfigError("Both SSL key store location and separate private key are specified.")
        if password is not None:
            raise ConfigError(_PEM_STORE_PASSWORD + ".")
        with _memory_file(_normalize_pem(key) + _normalize_pem(chain)) as path:
            _load_chain(ctx, path, key_password, "inline ssl.keystore.key", kind)
        return True
    if chain is not None:
        raise ConfigError("SSL certificate chain is specified, but private key is not specified")
    if location is None:
        if password is not None:
            raise ConfigError("SSL key store is not specified, but key store password is specified.")
        return False
    if kind == "PEM":
        if password is not None:
            raise ConfigError(_PEM_STORE_PASSWORD)
        text = _read(str(location), kind)
        with _memory_file(_normalize_pem(text)) as path:
            _load_chain(ctx, path, key_password, str(location), kind)
        return True
    if password is None:
        raise ConfigError("SSL key store is specified, but key store password is not specified.")
    if kind == "PKCS12":
        pem = _pkcs12_to_pem(Path(str(location)), password, with_key=True)
        with _memory_file(pem) as path:
            _load_chain(ctx, path, None, str(location), kind)
        return True
    raise _unsupported_type("ssl.keystore.type", kind)


def _load_truststore(ctx: ssl.SSLContext, settings: Settings, purpose: ssl.Purpose) -> None:
    kind = str(settings("ssl.truststore.type") or "JKS").upper()
    location = settings("ssl.truststore.location")
    password = _password(settings, "ssl.truststore.password")
    certificates = _password(settings, "ssl.truststore.certificates")
    if certificates is not None:
        if kind != "PEM":
            raise ConfigError(
                f"SSL trust store certs can be specified only for PEM, but trust store type is {kind}."
            )
        if location is not None:
            raise ConfigError("Both SSL trust store location and separate trust certificates are specified.")
        if password is not None:
            raise ConfigError("SSL trust store password cannot be specified for PEM format.")
        _load_ca(ctx, _normalize_pem(certificates), "inline ssl.truststore.certificates", kind)
        return
    if location is None:
        if password is not None:
            raise ConfigError("SSL trust store is not specified, but trust store password is specified.")
        ctx.load_default_certs(purpose)
        return
    if kind == "PEM":
        if password is not None:
            raise ConfigError("SSL trust store password cannot be specified for PEM format.")
        _load_ca(ctx, _normalize_pem(_read(str(location), kind)), str(location), kind)
    elif kind == "PKCS12":
        _load_ca(ctx, _pkcs12_to_pem(Path(str(location)), password, with_key=False), str(location), kind)
    else:
        raise _unsupported_type("ssl.truststore.type", kind)


def _unsupported_type(key: str, kind: str) -> ConfigError:
    return ConfigError(
        f"Invalid value {kind} for configuration {key}: Strom reads PEM and PKCS12 stores (JKS is Java's own "
        "format: convert it with keytool -importkeystore -deststoretype PKCS12)"
    )


def _read(location: str, kind: str) -> str:
    try:
        return Path(location).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"Failed to load SSL keystore {location} of type {kind}: {exc.strerror}") from None


def _load_chain(ctx: ssl.SSLContext, path: str, password: str | None, source: str, kind: str) -> None:
    try:
        ctx.load_cert_chain(path, password=password if password is not None else _no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"Failed to load SSL keystore {source} of type {kind}: {exc}") from None


def _no_password() -> str:
    # an encrypted key without ssl.key.password must fail, never prompt on the terminal
    raise ValueError("the private key is encrypted and ssl.key.password is not set")


def _load_ca(ctx: ssl.SSLContext, pem: str, source: str, kind: str) -> None:
    try:
        ctx.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"Failed to load SSL truststore {source} of type {kind}: {exc}") from None


def _normalize_pem(text: str) -> str:
    """Every PEM block rewrapped at 64 columns. Kafka reads blocks whatever their line breaks (a value in
    a properties file is often one line, or has literal `\\n`s); OpenSSL needs the standard layout."""
    blocks = []
    for kind, body in _PEM_BLOCK.findall(text):
        data = re.sub(r"\\n|\s", "", body)
        if kind.endswith("PRIVATE KEY") and ":" in body:
            data = body.strip()  # a traditional encrypted key has headers: keep its own lines
            blocks.append(f"-----BEGIN {kind}-----\n{data}\n-----END {kind}-----\n")
            continue
        lines = "\n".join(data[i : i + 64] for i in range(0, len(data), 64))
        blocks.append(f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n")
    return "".join(blocks)


@contextlib.contextmanager
def _memory_file(text: str) -> Iterator[str]:
    """A path OpenSSL can read `text` from: an anonymous memory file where Linux has memfd, else a
    private temporary file removed at once."""
    data = text.encode("ascii")
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = memfd("strom-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="strom-tls-") as tmp:
        path = Path(tmp) / "store.pem"
        path.touch(mode=0o600)
        path.write_bytes(data)
        yield str(path)


def _pkcs12_to_pem(location: Path, password: str | None, *, with_key: bool) -> str:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError:
        raise ConfigError(
            f"PKCS12 store {location}: reading PKCS12 needs the cryptography package (pip install "
            "cryptography); or convert it to PEM (openssl pkcs12 -nodes)"
        ) from None
    try:
        store = pkcs12.load_pkcs12(location.read_bytes(), password.encode() if password else None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Failed to load SSL keystore {location} of type PKCS12: {exc}") from None
    pem = serialization.Encoding.PEM
    parts: list[bytes] = []
    if with_key:
        if store.key is None or store.cert is None:
            raise ConfigError(f"Failed to load SSL keystore {location} of type PKCS12: no private key entry")
        parts.append(
            store.key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    certs = ([store.cert.certificate] if store.cert is not None else []) + [
        c.certificate for c in store.additional_certs
    ]
    parts.extend(cert.public_bytes(pem) for cert in certs)
    return b"".join(parts).decode("ascii")
