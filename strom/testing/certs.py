"""Test certificates made at test time with the `openssl` command: nothing secret is ever committed.

`make_pki(directory)` writes a CA, a broker certificate for 127.0.0.1 and localhost, a client certificate
signed by the same CA, and a foreign CA with a client certificate of its own (which the broker must
refuse). Keys are PKCS#8 (Kafka's PEM key stores read only that form); each party also gets a PEM key store
file (key then chain), an encrypted variant, and a PKCS12 key store.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PASSWORD", "Party", "Pki", "add_client", "make_pki"]

PASSWORD = "strom-test-pass"  # only for the test key stores made here


@dataclass(frozen=True, slots=True)
class Party:
    """One certificate holder's files."""

    key: Path  # PKCS#8, unencrypted
    cert: Path  # its certificate then the CA's
    keystore: Path  # key + chain in one PEM file (ssl.keystore.type=PEM)
    encrypted_keystore: Path  # the key encrypted with PASSWORD (ssl.key.password)
    pkcs12: Path  # PKCS12 key store, password PASSWORD
    subject: str  # as openssl -subj writes it

    def pem_settings(self, prefix: str = "ssl.") -> dict[str, str]:
        """Kafka client/broker settings for this party's PEM key store."""
        return {f"{prefix}keystore.type": "PEM", f"{prefix}keystore.location": str(self.keystore)}


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path
    broker: Party
    client: Party
    foreign_ca: Path
    foreign_client: Party


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _genkey(key: Path) -> None:
    # EC P-256: made in milliseconds, read by OpenSSL, Java (Kafka's PEM stores) and every client
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key), cwd=key.parent
    )


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _genkey(key)
    _openssl("req", "-x509", "-new", "-key", str(key), "-days", "2", "-subj", f"/O=Strom Test/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", str(cert), cwd=directory)  # fmt: skip
    return key, cert


def _party(directory: Path, name: str, subject: str, ca: tuple[Path, Path], san: str | None) -> Party:
    ca_key, ca_cert = ca
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    _genkey(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr), cwd=directory)
    ext = directory / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment",
             "extendedKeyUsage=serverAuth,clientAuth"]  # fmt: skip
    if san:
        lines.append(f"subjectAltName={san}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=directory)  # fmt: skip
    chain = cert.read_text() + ca_cert.read_text()
    cert.write_text(chain)
    keystore = directory / f"{name}.keystore.pem"
    keystore.write_text(key.read_text() + chain)
    encrypted_key = directory / f"{name}.enc.key"
    _openssl("pkcs8", "-topk8", "-in", str(key), "-v2", "aes-256-cbc", "-passout", f"pass:{PASSWORD}",
             "-out", str(encrypted_key), cwd=directory)  # fmt: skip
    encrypted_keystore = directory / f"{name}.enc.keystore.pem"
    encrypted_keystore.write_text(encrypted_key.read_text() + chain)
    pkcs12 = directory / f"{name}.p12"
    _openssl("pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-name", name,
             "-passout", f"pass:{PASSWORD}", "-out", str(pkcs12), cwd=directory)  # fmt: skip
    for path in (key, encrypted_key, keystore, encrypted_keystore, pkcs12):
        path.chmod(0o600)
    return Party(key, cert, keystore, encrypted_keystore, pkcs12, subject)


def make_pki(directory: Path) -> Pki:
    """Make every file in `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    foreign = _ca(directory, "foreign-ca")
    broker = _party(directory, "broker", "/C=DE/O=Strom Test/OU=Brokers/CN=localhost", ca,
                    "DNS:localhost,IP:127.0.0.1")  # fmt: skip
    client = _party(directory, "client", "/C=DE/O=Strom Test/OU=Clients/CN=alice", ca, None)
    foreign_client = _party(directory, "foreign-client", "/O=Elsewhere/CN=mallory", foreign, None)
    return Pki(ca[1], broker, client, foreign[1], foreign_client)


def add_client(pki: Pki, name: str, common_name: str) -> Party:
    """Another client certificate signed by `pki`'s CA (subject `/O=Strom Test/OU=Clients/CN=<common_name>`),
    for tests that need several principals."""
    directory = pki.ca.parent
    ca = (directory / "ca.key", pki.ca)
    return _party(directory, name, f"/C=DE/O=Strom Test/OU=Clients/CN={common_name}", ca, None)
