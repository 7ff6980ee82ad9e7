"""The principal of a client certificate: its subject as Java's RFC 2253 string, shaped by Kafka's
ssl.principal.mapping.rules (cases from Kafka's SslPrincipalMapperTest)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from strom.security.principal import ANONYMOUS, KafkaPrincipal
from strom.security.ssl_principal import NoMatchingRule, SslPrincipalMapper, subject_dn


def test_rules_as_kafka_applies_them() -> None:
    mapper = SslPrincipalMapper(
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,"
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,"
        "DEFAULT"
    )
    assert mapper.name("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US") == "kafka-server1"
    assert mapper.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa,ST=Clara,C=US") == "duke@javasoft"
    assert mapper.name("OU=JavaSoft,O=Sun Microsystems,C=US,cn=duke") == "DUKE"
    assert mapper.name("OU=JavaSoft,O=Sun Microsystems,C=US") == "OU=JavaSoft,O=Sun Microsystems,C=US"
    assert SslPrincipalMapper(None).name("CN=a,O=b") == "CN=a,O=b"
    assert SslPrincipalMapper("RULE:^CN=(.*)$/$1$2/").name("CN=x") == "x$2"  # no group 2: a literal


def test_no_matching_rule_and_invalid_rules() -> None:
    with pytest.raises(NoMatchingRule):
        SslPrincipalMapper("RULE:^CN=(.*)$/$1/").name("OU=x")
    for bad in ("DEFAULT/L", "RULE:/", "RULE:^CN=(.*?)/$1/LX"):
        with pytest.raises(ValueError, match="Invalid rule"):
            SslPrincipalMapper(bad)


def test_subject_dn_of_real_certificates(tmp_path: Path) -> None:
    def cert(subject: str) -> bytes:
        key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", subject, "-multivalue-rdn"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return ssl.PEM_cert_to_DER_cert(crt.read_text())

    assert (
        subject_dn(cert("/C=DE/O=Strom Test/OU=Clients/CN=alice")) == "CN=alice,OU=Clients,O=Strom Test,C=DE"
    )
    # escaping, a multi-valued RDN (its values in DER order) and an attribute Java names by OID with its
    # DER value in hex: the string Java's X500Principal.getName() gives for the same certificate
    dn = subject_dn(cert("/O=A\\, B+OU=x/CN= lead#/emailAddress=b@x.io"))
    assert dn == "1.2.840.113549.1.9.1=#16066240782e696f,CN=\\ lead\\#,OU=x+O=A\\, B"


def test_principal_strings() -> None:
    assert str(ANONYMOUS) == "User:ANONYMOUS"
    assert KafkaPrincipal.parse("User:CN=a,O=b") == KafkaPrincipal("User", "CN=a,O=b")
