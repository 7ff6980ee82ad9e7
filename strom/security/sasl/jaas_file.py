"""Kafka's JAAS contexts: the `sasl.jaas.config` properties, and the static JAAS file a JVM reads from the
system property `java.security.auth.login.config` (`-Djava.security.auth.login.config=/path` in
KAFKA_OPTS, strom.security.system_properties), chosen as Kafka 4.4's JaasContext chooses.

    KafkaServer {
        // one section may hold the login modules of every mechanism a listener enables
        org.apache.kafka.common.security.plain.PlainLoginModule required
            username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";
        org.apache.kafka.common.security.scram.ScramLoginModule required;
    };
    sasl_ssl.KafkaServer { ... };      /* a listener's own section, looked up first */
    KafkaClient { ... };               /* what Kafka's clients and tools log in with */

The file is read as the JDK's ConfigFile reads it: sections `Name { entries };` (names are case-sensitive,
a name may be quoted, a name given twice is refused, an empty section counts as absent), each entry a
login-module class, a control flag (required, requisite, sufficient, optional; any case), `key=value`
options and `;`. Tokens follow java.io.StreamTokenizer as ConfigFile configures it: words of letters,
digits and `.-_$*`, double-quoted strings with Java escapes, `//` and `/* */` comments. Unlike an inline
`sasl.jaas.config`, values must be words or double-quoted strings (a single-quoted or bare numeric value is
refused), and `${name}` in a value is replaced by the system property `name` (KAFKA_OPTS -D properties and
the JVM's user.home, user.name, user.dir, java.io.tmpdir, file.separator, path.separator, line.separator;
`${/}` is the file separator); an unknown name is refused ("unable to expand property name"). The errors
are the JDK's texts on one line ("Configuration Error: Line 6: expected [option value], found [x]").
The file is named by a path or a `file:` URL; it is read only when a context needs it (as the JVM does),
and neither `login.config.url.N` of java.security nor `~/.java.login.config` is read.

Which entries a context has (JaasContext.loadServerContext and loadClientContext):
- Server, per listener and mechanism: `listener.name.<listener>.<mechanism>.sasl.jaas.config` when set;
  else the file's `<listener lower-cased>.KafkaServer` section, else its `KafkaServer` section; else
  Kafka's "Could not find a 'KafkaServer' or '<listener>.KafkaServer' entry in the JAAS configuration.
  System property 'java.security.auth.login.config' is <path or 'not set'>". An unprefixed
  `sasl.jaas.config` is ignored with Kafka's warning.
- Client: `sasl.jaas.config` when set, else the file's `KafkaClient` section, else the same message
  naming 'KafkaClient' alone.
- A `sasl.jaas.config` value must hold exactly one login module ("JAAS config property contains 2 login
  modules, should be 1 module"); a file section may hold several.
- Every login module of the context must be allowed: `org.apache.kafka.allowed.login.modules` (a
  comma-separated list) when set, else none of `org.apache.kafka.disallowed.login.modules` (deprecated;
  default JndiLoginModule and LdapLoginModule of com.sun.security.auth.module), with Kafka's messages.
Errors are ValueError (JaasError) with these messages.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from strom.security.sasl.jaas import JaasEntry, parse_jaas_config, quoted_string
from strom.security.system_properties import system_properties

__all__ = [
    "CLIENT_CONTEXT",
    "LOGIN_CONFIG",
    "SERVER_CONTEXT",
    "JaasContext",
    "JaasError",
    "load_context",
    "parse_jaas_file",
]

log = logging.getLogger("strom.security.sasl")

LOGIN_CONFIG = "java.security.auth.login.config"
SERVER_CONTEXT = "KafkaServer"
CLIENT_CONTEXT = "KafkaClient"
ALLOWED_LOGIN_MODULES = "org.apache.kafka.allowed.login.modules"
DISALLOWED_LOGIN_MODULES = "org.apache.kafka.disallowed.login.modules"
_DEFAULT_DISALLOWED = (
    "com.sun.security.auth.module.JndiLoginModule,com.sun.security.auth.module.LdapLoginModule"
)
_FLAGS = ("REQUIRED", "REQUISITE", "SUFFICIENT", "OPTIONAL")
_VALUE_KINDS = ("module class name", "controlFlag", "option key", "option value")


class JaasError(ValueError):
    """A JAAS configuration Kafka would refuse; the message is Kafka's (or the JDK's)."""


@dataclass(frozen=True, slots=True)
class JaasContext:
    """The login modules one SASL context authenticates with: `name` is the context (section) name,
    `source` says where the entries came from, for messages."""

    name: str
    entries: tuple[JaasEntry, ...]
    source: str


# ---------------------------------------------------------------------------------------------- file syntax


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", '"' (double-quoted), "'" (single-quoted), "number", "eof", or the character itself
    sval: str | None  # StreamTokenizer's sval: the word or string, None for numbers and characters
    line: int  # ConfigFile's line number: line ends seen outside /* */ comments, plus one

    @property
    def shown(self) -> str:
        return "null" if self.sval is None else self.sval  # as Java prints a null String


def _is_word_start(ch: str) -> bool:
    return (ch.isascii() and (ch.isalpha() or ch in "$_*")) or ord(ch) >= 0xA0


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        ch = text[i]
        if ch in "\r\n":
            # ConfigFile counts the line ends the tokenizer reports (\r\n is one), not those in comments
            i += 2 if text.startswith("\r\n", i) else 1
            line += 1
        elif ord(ch) <= 32:
            i += 1
        elif (
            ch.isdigit()
            or ch == "."
            or (ch == "-" and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == "."))
        ):
            # '-' and '.' are numeric before they are word characters: "-1" and ".5" are numbers
            i += 1
            dot = ch == "."
            while i < n and (text[i].isdigit() or (text[i] == "." and not dot)):
                dot = dot or text[i] == "."
                i += 1
            out.append(_Token("number", None, line))
        elif ch == "-":
            out.append(_Token("-", None, line))
            i += 1
        elif _is_word_start(ch):
            start = i
            while i < n and (_is_word_start(text[i]) or text[i].isdigit() or text[i] in ".-"):
                i += 1
            out.append(_Token("word", text[start:i], line))
        elif ch in "\"'":
            value, i = quoted_string(text, i + 1, ch)
            out.append(_Token(ch, value, line))
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "/":
            # "//" is a comment, and so is a lone "/" (StreamTokenizer's default comment character)
            while i < n and text[i] not in "\r\n":
                i += 1
        else:
            out.append(_Token(ch, None, line))
            i += 1
    out.append(_Token("eof", None, line))
    return out


def _expand(value: str, line: int, properties: Mapping[str, str]) -> str:
    """sun.security.util.PropertyExpander: `${name}` is the system property (`${/}` the separator);
    `${{...}}` and an unterminated `${` stay as they are."""
    if not value or "${" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    p = value.find("${")
    while p >= 0:
        out.append(value[i:p])
        end = p + 2
        if end < n and value[end] == "{":
            close = value.find("}}", end)
            if close < 0 or close + 2 == n:
                out.append(value[p:])
                i = n
                break
            out.append(value[p : close + 2])
            i = close + 2
        else:
            close = value.find("}", end)
            if close < 0:
                out.append(value[p:])
                i = n
                break
            name = value[end:close]
            if name == "/":
                out.append("/")
            elif not name:
                raise JaasError("key can't be empty")
            elif name in properties:
                out.append(properties[name])
            else:
                raise JaasError(f"unable to expand property {name}")
            i = close + 1
        p = value.find("${", i)
    out.append(value[i:])
    expanded = "".join(out)
    if not expanded:
        raise JaasError(
            f"Configuration Error: Line {line}: system property [{value}] expanded to empty value"
        )
    return expanded


class _Parser:
    """sun.security.provider.ConfigFile's parseLoginEntry over the tokens, with its messages."""

    def __init__(self, text: str, properties: Mapping[str, str]) -> None:
        self._tokens = _tokens(text)
        self._pos = 0
        self._properties = properties

    @property
    def _ahead(self) -> _Token:
        return self._tokens[self._pos]

    def _advance(self) -> None:
        self._pos = min(self._pos + 1, len(self._tokens) - 1)

    def _match(self, expect: str) -> str | None:
        token = self._ahead
        if token.kind == "eof":
            raise JaasError(f"Configuration Error: expected [{expect}], read [end of file]")
        if token.kind in ("word", '"'):
            if expect not in _VALUE_KINDS:
                raise JaasError(
                    f"Configuration Error: Line {token.line}: expected [{expect}], found [{token.shown}]"
                )
            self._advance()
            return token.sval
        if token.kind in ("{", ";", "}", "="):
            if token.kind != expect:
                raise JaasError(f"Configuration Error: Line {token.line}: expected [{expect}]")
            self._advance()
            return None
        raise JaasError(f"Configuration Error: Line {token.line}: expected [{expect}], found [{token.shown}]")

    def sections(self) -> dict[str, list[JaasEntry]]:
        found: dict[str, list[JaasEntry]] = {}
        while self._ahead.kind != "eof":
            # the first token names the section whatever it is (a number or a brace names it "null")
            name = self._ahead.shown
            self._advance()
            self._match("{")
            entries: list[JaasEntry] = []
            while self._ahead.kind != "}":
                module = str(self._match("module class name"))
                flag = str(self._match("controlFlag")).upper()
                if flag not in _FLAGS:
                    raise JaasError(f"Configuration Error: Invalid control flag, {flag}")
                options: dict[str, str] = {}
                while self._ahead.kind != ";":
                    key = str(self._match("option key"))
                    self._match("=")
                    line = self._ahead.line
                    options[key] = _expand(str(self._match("option value")), line, self._properties)
                self._advance()
                entries.append(JaasEntry(module, flag, options))
            self._match("}")
            self._match(";")
            if name in found:
                raise JaasError(f"Configuration Error: Can not specify multiple entries for {name}")
            found[name] = entries
        return found


def parse_jaas_file(text: str, properties: Mapping[str, str] | None = None) -> dict[str, list[JaasEntry]]:
    """The sections of a JAAS file: name -> login-module entries (empty sections included). `properties`
    are the system properties `${name}` may name. JaasError with the JDK's message."""
    return _Parser(text, _jvm_properties(properties or {})).sections()


def _jvm_properties(given: Mapping[str, str]) -> dict[str, str]:
    """The system properties a JVM always has that a JAAS file may name, then the -D ones."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return {
        "user.home": str(Path.home()),
        "user.name": user,
        "user.dir": os.getcwd(),
        "java.io.tmpdir": "/tmp",
        "file.separator": "/",
        "path.separator": ":",
        "line.separator": "\n",
        **given,
    }


def _read_file(location: str, properties: Mapping[str, str]) -> dict[str, list[JaasEntry]]:
    expanded = _expand(location, 0, properties) if location else location
    if not expanded:
        raise JaasError(" (No such file or directory)")  # the JDK's words for an empty name
    path = expanded
    url = urlparse(expanded)
    if not Path(expanded).exists() and len(url.scheme) > 1:
        # the JDK opens a name that is no file as a URL
        if url.scheme != "file":
            raise JaasError(
                f"{expanded}: Strom reads the JAAS file of {LOGIN_CONFIG} from a path or a file: URL only"
            )
        path = unquote(url.path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JaasError(f"{expanded} (No such file or directory)") from None
    except OSError as exc:
        raise JaasError(f"{expanded} ({exc.strerror})") from None
    try:
        return _Parser(text, properties).sections()
    except JaasError as exc:
        raise JaasError(f"{exc} (JAAS file {expanded})") from None


# ---------------------------------------------------------------------------------------------- contexts


def _check_allowed(entry: JaasEntry, properties: Mapping[str, str]) -> None:
    """JaasContext.throwIfLoginModuleIsNotAllowed."""
    module = entry.login_module.strip()
    disallowed = properties.get(DISALLOWED_LOGIN_MODULES)
    if disallowed is not None:
        log.warning(
            "System property '%s' is deprecated and will be removed in a future release. Use '%s' instead.",
            DISALLOWED_LOGIN_MODULES,
            ALLOWED_LOGIN_MODULES,
        )
    allowed = properties.get(ALLOWED_LOGIN_MODULES)
    if allowed is not None:
        if module not in {name.strip() for name in allowed.split(",")}:
            raise JaasError(
                f"{module} is not allowed. Update System property '{ALLOWED_LOGIN_MODULES}' to allow {module}"
            )
        return
    if module in {name.strip() for name in (disallowed or _DEFAULT_DISALLOWED).split(",")}:
        raise JaasError(
            f"{module} is not allowed. The system property '{DISALLOWED_LOGIN_MODULES}' is deprecated. "
            f"Use the {ALLOWED_LOGIN_MODULES} to allow this module. e.g.,-D{ALLOWED_LOGIN_MODULES}={module}"
        )


def load_context(
    global_name: str,
    listener_name: str | None,
    dynamic: str | None,
    dynamic_key: str,
    environ: Mapping[str, str] | None = None,
) -> JaasContext:
    """Kafka's JaasContext.load: the `dynamic` JAAS config (the value of `dynamic_key`, None when unset)
    when given, else the file's `listener_name` section (when given), else its `global_name` section.

    A syntax error in `dynamic` is a JaasError whose text is Kafka's JaasConfig message alone, so callers
    can name the key as they do today."""
    properties = _jvm_properties(system_properties(environ))
    if dynamic is not None:
        entries = parse_jaas_config(dynamic)
        if len(entries) != 1:
            raise JaasError(f"JAAS config property contains {len(entries)} login modules, should be 1 module")
        _check_allowed(entries[0], properties)
        return JaasContext(listener_name or global_name, tuple(entries), dynamic_key)
    location = properties.get(LOGIN_CONFIG)
    sections = _read_file(location, properties) if location is not None else {}
    name = global_name
    entries = sections.get(listener_name) if listener_name is not None else None
    if entries:
        name = listener_name
    else:
        entries = sections.get(global_name)
    if not entries:
        either = f" or '{listener_name}'" if listener_name is not None else ""
        raise JaasError(
            f"Could not find a '{global_name}'{either} entry in the JAAS configuration. System property "
            f"'{LOGIN_CONFIG}' is {'not set' if location is None else location}"
        )
    for entry in entries:
        _check_allowed(entry, properties)
    return JaasContext(str(name), tuple(entries), f"the '{name}' entry of the JAAS file {location}")
