"""The SASL pieces without a network: JAAS lines as Kafka parses them, PLAIN, SCRAM (both directions,
RFC 5802's own example), the unsecured OAUTHBEARER validator, and the mechanism order of Kafka's handshake
response."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from strom.security.sasl import SaslAuthenticationError, SaslError
from strom.security.sasl.authenticator import java_hash_set_order
from strom.security.sasl.jaas import parse_jaas_config
from strom.security.sasl.oauthbearer import OAuthBearerServer, oauthbearer_client_token
from strom.security.sasl.plain import PlainServer, plain_client_token
from strom.security.sasl.scram import ScramClient, ScramServer
from strom.security.sasl.unsecured_jws import unsecured_login_token
from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    credential_from_string,
    credential_to_string,
    make_credential,
    salted_password,
)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_jaas_line_as_kafka_reads_it() -> None:
    entries = parse_jaas_config(
        'org.apache.kafka.common.security.plain.PlainLoginModule required\n'
        '  username="admin" password="a\\"b" user_admin=\'x y\' /* note */ user_bob="1"; // end'
    )
    assert len(entries) == 1
    entry = entries[0]
    assert entry.login_module == "org.apache.kafka.common.security.plain.PlainLoginModule"
    assert entry.control_flag == "REQUIRED"
    assert entry.options == {"username": "admin", "password": 'a"b', "user_admin": "x y", "user_bob": "1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Login module not specified in JAAS config"),
        ("Mod", "Login module control flag not specified in JAAS config"),
        ("Mod sometimes;", "Invalid login module control flag 'sometimes' in JAAS config"),
        ("Mod required user_a=1;", "Value not specified for key 'user_a' in JAAS config"),
        ('Mod required user_a="1"', "JAAS config entry not terminated by semi-colon"),
    ],
)
def test_jaas_errors_are_kafkas(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        parse_jaas_config(text)


def test_plain() -> None:
    users = {"alice": "alice-secret"}
    server = PlainServer(users)
    assert run(server.evaluate(plain_client_token("alice", "alice-secret"))) == b""
    assert server.complete and server.authorization_id == "alice"
    for token, message in [
        (plain_client_token("alice", "wrong"), "Authentication failed: Invalid username or password"),
        (plain_client_token("mallory", "x"), "Authentication failed: Invalid username or password"),
        (b"\x00alice", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
        (b"\x00\x00pw", "Authentication failed: username not specified"),
        (b"bob\x00alice\x00alice-secret", "Authentication failed: Client requested an authorization id "
                                          "that is different from username"),
    ]:
        with pytest.raises(SaslAuthenticationError) as info:
            run(PlainServer(users).evaluate(token))
        assert str(info.value) == message


def test_scram_rfc5802_example() -> None:
    # RFC 5802 section 5 (SHA-1 there; the same computation with SHA-256 checked against RFC 7677's example)
    spec = SCRAM_MECHANISMS["SCRAM-SHA-256"]
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = make_credential(spec, salted_password(spec, "pencil", salt, 4096), salt, 4096)
    assert credential_from_string(credential_to_string(credential)) == credential
    client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    client = ScramClient("SCRAM-SHA-256", "user", "pencil")
    client._nonce, client._bare = "rOprNGfwEbeRWgbNEkqO", "n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.first() == client_first
    final = client.final(server_first)
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_exchange(mechanism: str) -> None:
    spec = SCRAM_MECHANISMS[mechanism]
    credential = make_credential(spec, salted_password(spec, "pw", b"salt", 4096), b"salt", 4096)

    async def lookup(user: str, mech: str):  # type: ignore[no-untyped-def]
        return credential if (user, mech) == ("a,b=c", mechanism) else None

    async def exchange(user: str, password: str, extra: bytes = b"") -> ScramServer:
        server, client = ScramServer(mechanism, lookup), ScramClient(mechanism, user, password)
        first = await server.evaluate(client.first() + extra)
        client.verify(await server.evaluate(client.final(first)))  # type: ignore[arg-type]
        return server

    assert run(exchange("a,b=c", "pw")).authorization_id == "a,b=c"
    with pytest.raises(SaslError, match="Invalid client credentials"):
        run(exchange("a,b=c", "bad"))
    with pytest.raises(SaslError, match="Invalid user credentials"):
        run(exchange("nobody", "pw"))
    with pytest.raises(SaslError, match="Invalid tokenId"):
        run(exchange("a,b=c", "pw", b",tokenauth=true"))


def test_unsecured_oauthbearer() -> None:
    now = 1_700_000_000_000
    options = {"unsecuredLoginStringClaim_sub": "carol", "unsecuredLoginLifetimeSeconds": "60"}
    token = unsecured_login_token(options, now)
    server = OAuthBearerServer({}, lambda: now)
    assert run(server.evaluate(oauthbearer_client_token(token))) == b""
    assert server.authorization_id == "carol" and server.credential_expiration_ms == now + 60_000
    expired = OAuthBearerServer({}, lambda: now + 61_000)
    assert json.loads(run(expired.evaluate(oauthbearer_client_token(token)))) == {"status": "invalid_token"}
    with pytest.raises(SaslAuthenticationError) as info:
        run(expired.evaluate(b"\x01"))
    assert str(info.value) == '{"status":"invalid_token"}'
    scoped = OAuthBearerServer({"unsecuredValidatorRequiredScope": "write"}, lambda: now)
    answer = json.loads(run(scoped.evaluate(oauthbearer_client_token(token))))
    assert answer == {"status": "insufficient_scope", "scope": "write"}


def test_handshake_lists_mechanisms_in_javas_hash_set_order() -> None:
    # as java prints new ArrayList<>(new HashSet<>(List.of(...))) for these
    assert java_hash_set_order(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]) == [
        "PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"
    ]
    assert java_hash_set_order(["OAUTHBEARER", "SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-512"]) == [
        "PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256", "OAUTHBEARER"
    ]
