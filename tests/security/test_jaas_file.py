"""JAAS files as Kafka reads them (strom.security.sasl.jaas_file): the JDK's ConfigFile syntax and
messages (the error table was taken from JDK 17's javax.security.auth.login.Configuration on the same
texts), and Kafka 4.4's JaasContext precedence: a listener's `<mechanism>.sasl.jaas.config` wins, then the
file's `<listener>.KafkaServer` section, then `KafkaServer`; clients take `sasl.jaas.config`, then
`KafkaClient`; a missing section fails with Kafka's message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strom.client.security import ClientSecurity
from strom.config import BrokerConfig, ConfigError
from strom.security.sasl import SaslError
from strom.security.sasl.client import SaslClientSettings
from strom.security.sasl.jaas_file import JaasError, load_context, parse_jaas_file
from strom.security.sasl.listener import SaslListenerSettings
from strom.security.sasl.plain import plain_client_token
from strom.server.listeners import Listener

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTH = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
SASL_PLAINTEXT = Listener("SASL_PLAINTEXT", "127.0.0.1", 0, "SASL_PLAINTEXT")
INTERNAL = Listener("INTERNAL", "127.0.0.1", 0, "SASL_PLAINTEXT")

SERVER_FILE = f"""
/* the broker's logins: one section holds every mechanism's module */
KafkaServer {{
    {PLAIN} required
        username="admin"            // the inter-broker login
        password="admin-secret"
        user_admin="admin-secret"
        user_alice="alice-secret";
    {SCRAM} Required;
}};
// the INTERNAL listener has its own users
internal.KafkaServer {{
    {PLAIN} required username="svc" password="svc-pw" user_svc="svc-pw";
}};
KafkaClient {{ {PLAIN} required username="alice" password="alice-secret"; }};
"""


def test_sections_flags_options_and_comments() -> None:
    sections = parse_jaas_file(SERVER_FILE)
    assert list(sections) == ["KafkaServer", "internal.KafkaServer", "KafkaClient"]
    plain, scram = sections["KafkaServer"]
    assert (plain.login_module, plain.control_flag) == (PLAIN, "REQUIRED")
    assert plain.options == {
        "username": "admin",
        "password": "admin-secret",
        "user_admin": "admin-secret",
        "user_alice": "alice-secret",
    }
    assert (scram.login_module, scram.control_flag, scram.options) == (SCRAM, "REQUIRED", {})
    text = (
        '"Quoted Name" { m requisite a="x\\101\\n\\"q" b=w.o-r$d_* ; n SUFFICIENT; o optional; };\nEmpty { };'
    )
    quoted = parse_jaas_file(text)
    assert [e.control_flag for e in quoted["Quoted Name"]] == ["REQUISITE", "SUFFICIENT", "OPTIONAL"]
    assert quoted["Quoted Name"][0].options == {"a": 'xA\n"q', "b": "w.o-r$d_*"}
    assert quoted["Empty"] == []  # an empty section is as good as absent to Kafka


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("K { m required a=123; };", "Line 1: expected [option value], found [null]"),
        ("K { m required a='x'; };", "Line 1: expected [option value], found [x]"),
        ("K { m required a=-1; };", "Line 1: expected [option value], found [null]"),
        ("K { m bogus; };", "Invalid control flag, BOGUS"),
        ("K { m required; }; K { n required; };", "Can not specify multiple entries for K"),
        ('K { m required a="x"', "expected [option key], read [end of file]"),
        ("K { m required a; };", "Line 1: expected [=]"),
        ("K { m required; }", "expected [;], read [end of file]"),
        ('K { m required a="multi\nline"; };', "Line 2: expected [=], found [; };]"),
        ("K { 1m required; };", "Line 1: expected [module class name], found [null]"),
        ("K { m required = ; };", "Line 1: expected [option key]"),
        ("{ m required; };", "Line 1: expected [{], found [m]"),
        # line ends inside /* */ are not counted; \r\n is one line end
        ("/*\n\n\n*/ K { m required a=1; };", "Line 1: expected [option value]"),
        ("\r\n\r\rK { m required a=1; };", "Line 4: expected [option value]"),
        ('K { m required a="${nope}"; };', "unable to expand property nope"),
    ],
)
def test_syntax_errors_are_the_jdks(text: str, message: str) -> None:
    with pytest.raises(JaasError) as caught:
        parse_jaas_file(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_values_expand_system_properties() -> None:
    sections = parse_jaas_file(
        'K { m required a="${x.y}/${/}z" b="${user.home}" c="${{kept}}" d="${open"; };', {"x.y": "X"}
    )
    options = sections["K"][0].options
    assert options["a"] == "X//z"
    assert options["b"] == str(Path.home())
    assert (options["c"], options["d"]) == ("${{kept}}", "${open")


def opts(path: Path, *extra: str) -> dict[str, str]:
    return {"KAFKA_OPTS": " ".join([f"-Djava.security.auth.login.config={path}", *extra])}


@pytest.fixture
def server_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kafka_server_jaas.conf"
    path.write_text(SERVER_FILE)
    monkeypatch.setenv("KAFKA_OPTS", f"-Xmx1g -Djava.security.auth.login.config={path}")
    return path


def settings(listener: Listener = SASL_PLAINTEXT, **props: str) -> SaslListenerSettings:
    base = {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"}
    return SaslListenerSettings.build(BrokerConfig({**base, **props}), listener)


def accepts(built: SaslListenerSettings, user: str, password: str) -> bool:
    server = built.new_server("PLAIN", lambda: 0)
    try:
        asyncio.run(server.evaluate(plain_client_token(user, password)))
    except SaslError:
        return False
    return server.complete


def test_the_file_serves_a_listener_without_jaas_lines(server_file: Path) -> None:
    built = settings()
    assert accepts(built, "alice", "alice-secret") and not accepts(built, "svc", "svc-pw")
    assert [e.login_module for e in built.jaas["SCRAM-SHA-256"]] == [PLAIN, SCRAM]
    # the listener's own section comes first
    internal = settings(INTERNAL)
    assert accepts(internal, "svc", "svc-pw") and not accepts(internal, "alice", "alice-secret")
    # brokers log in to each other with the options of the mechanism's module
    client = SaslClientSettings.inter_broker(
        BrokerConfig({"sasl.mechanism.inter.broker.protocol": "PLAIN"}), SASL_PLAINTEXT
    )
    assert client is not None and client.options["username"] == "admin"


def test_a_listener_jaas_line_wins_over_the_file(server_file: Path) -> None:
    built = settings(
        **{"listener.name.sasl_plaintext.plain.sasl.jaas.config": f'{PLAIN} required user_zed="z";'}
    )
    assert accepts(built, "zed", "z") and not accepts(built, "alice", "alice-secret")
    # SCRAM-SHA-256 has no line of its own: it still takes the file's section
    assert len(built.jaas["SCRAM-SHA-256"]) == 2


def test_missing_sections_fail_with_kafkas_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_OPTS", raising=False)
    with pytest.raises(ConfigError) as unset:
        settings()
    assert str(unset.value) == (
        "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS configuration. "
        "System property 'java.security.auth.login.config' is not set"
    )
    path = tmp_path / "client_only.conf"
    path.write_text(f'KafkaClient {{ {PLAIN} required username="u" password="p"; }};')
    monkeypatch.setenv("KAFKA_OPTS", f"-Djava.security.auth.login.config={path}")
    with pytest.raises(ConfigError) as missing:
        settings()
    assert str(missing.value) == (
        "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS configuration. "
        f"System property 'java.security.auth.login.config' is {path}"
    )
    # an unprefixed sasl.jaas.config is a client setting: the broker ignores it, as Kafka does
    with pytest.raises(ConfigError, match="Could not find a 'KafkaServer'"):
        settings(**{"sasl.jaas.config": f'{PLAIN} required user_a="a";'})
    monkeypatch.setenv("KAFKA_OPTS", f"-Djava.security.auth.login.config={tmp_path / 'absent.conf'}")
    with pytest.raises(ConfigError, match=r"absent\.conf \(No such file or directory\)"):
        settings()
    path.write_text("KafkaServer { m required a=1; };")
    monkeypatch.setenv("KAFKA_OPTS", f"-Djava.security.auth.login.config=file:{path}")
    with pytest.raises(ConfigError, match=r"Line 1: expected \[option value\], found \[null\]"):
        settings()


def test_kafkas_rules_for_modules(server_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one module per sasl.jaas.config value
    with pytest.raises(
        ConfigError, match="JAAS config property contains 2 login modules, should be 1 module"
    ):
        settings(
            **{"listener.name.sasl_plaintext.plain.sasl.jaas.config": f"{PLAIN} required; {SCRAM} required;"}
        )
    # OAUTHBEARER's unsecured handlers take a context of exactly one module
    with pytest.raises(
        ConfigError, match=r"Must supply exactly 1 non-null JAAS mechanism configuration \(size was 2\)"
    ):
        settings(**{"sasl.enabled.mechanisms": "OAUTHBEARER"})
    oauth = server_file.parent / "oauth.conf"
    oauth.write_text(f'KafkaServer {{ {OAUTH} required unsecuredLoginStringClaim_sub="admin"; }};')
    monkeypatch.setenv("KAFKA_OPTS", f"-Djava.security.auth.login.config={oauth}")
    assert settings(**{"sasl.enabled.mechanisms": "OAUTHBEARER"}).jaas["OAUTHBEARER"][0].login_module == OAUTH
    # JNDI and LDAP login modules are refused unless allowed (CVE-2023-25194)
    ldap = server_file.parent / "ldap.conf"
    ldap.write_text(
        f"KafkaServer {{ {PLAIN} required; com.sun.security.auth.module.LdapLoginModule optional; }};"
    )
    with pytest.raises(JaasError, match=r"LdapLoginModule is not allowed\. The system property"):
        load_context("KafkaServer", "x.KafkaServer", None, "", opts(ldap))
    with pytest.raises(JaasError, match=rf"{PLAIN} is not allowed\. Update System property"):
        load_context(
            "KafkaServer", None, None, "", opts(ldap, f"-Dorg.apache.kafka.allowed.login.modules={SCRAM}")
        )
    allowed = f"-Dorg.apache.kafka.allowed.login.modules={PLAIN},com.sun.security.auth.module.LdapLoginModule"
    assert len(load_context("KafkaServer", None, None, "", opts(ldap, allowed)).entries) == 2


def test_clients_take_sasl_jaas_config_then_the_kafkaclient_section(
    server_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    props = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}
    from_file = ClientSecurity.from_properties(props).sasl
    assert from_file is not None and from_file.options == {"username": "alice", "password": "alice-secret"}
    inline = ClientSecurity.from_properties(
        {**props, "sasl.jaas.config": f'{PLAIN} required username="bob" password="b";'}
    ).sasl
    assert inline is not None and inline.options["username"] == "bob"
    with pytest.raises(
        ConfigError,
        match=r"Could not find a 'KafkaClient' entry in the JAAS configuration\. "
        r"System property 'java\.security\.auth\.login\.config' is not set$",
    ):
        SaslClientSettings.from_client_properties(props, {})
    no_password = server_file.parent / "client.conf"
    no_password.write_text(f'KafkaClient {{ {PLAIN} required username="alice"; }};')
    monkeypatch.setenv("KAFKA_OPTS", f"-Djava.security.auth.login.config={no_password}")
    with pytest.raises(
        ConfigError, match=r"'KafkaClient' entry of the JAAS file .* needs the password option"
    ):
        ClientSecurity.from_properties(props)
