"""Kafka's `sasl.jaas.config` values: JAAS login-module entries, parsed as Kafka's JaasConfig parses them.

    org.apache.kafka.common.security.plain.PlainLoginModule required username="admin"
        password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";

Each entry is a login-module class name, a control flag (required, requisite, sufficient, optional; any
case) and `key=value` options, ended by `;`. Tokens follow java.io.StreamTokenizer as Kafka configures it:
words of letters, digits, `.`, `-`, `_` and `$` (starting with a letter, `_` or `$`), strings in double or
single quotes with Java escapes, `//` and `/* */` comments. A value that is a bare number is no word, so
Kafka refuses it ("Value not specified for key ...") and so do we: quote it. Errors are ValueError with
Kafka's messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["JaasEntry", "parse_jaas_config", "quoted_string"]

_FLAGS = ("REQUIRED", "REQUISITE", "SUFFICIENT", "OPTIONAL")
_ESCAPES = {"a": "\x07", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\x0b"}


@dataclass(frozen=True, slots=True)
class JaasEntry:
    """One login module: its class name, control flag (upper case) and options."""

    login_module: str
    control_flag: str
    options: dict[str, str] = field(default_factory=dict)


def _is_word_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$" or ord(ch) >= 0xA0


def _is_word_part(ch: str) -> bool:
    return _is_word_start(ch) or ch.isdigit() or ch in ".-"


def _tokens(text: str) -> list[tuple[str, str | None]]:
    """(kind, value): ("word", w), ("string", s), ("number", None) or ("char", c)."""
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ord(ch) <= 32:
            i += 1
        elif text.startswith("//", i) or (ch == "/" and not text.startswith("/*", i)):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "\"'":
            value, i = quoted_string(text, i + 1, ch)
            out.append(("string", value))
        elif ch.isdigit() or (ch in ".-" and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")):
            i += 1
            while i < n and (text[i].isdigit() or text[i] == "."):
                i += 1
            out.append(("number", None))
        elif _is_word_start(ch):
            start = i
            while i < n and _is_word_part(text[i]):
                i += 1
            out.append(("word", text[start:i]))
        else:
            out.append(("char", ch))
            i += 1
    return out


def quoted_string(text: str, i: int, quote: str) -> tuple[str, int]:
    """java.io.StreamTokenizer's quoted string from just after its opening `quote` at `i`: (value, index
    after it). It ends at the same quote, at an unescaped line end or at the end of the text."""
    chars: list[str] = []
    n = len(text)
    while i < n and text[i] != quote and text[i] not in "\r\n":
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "01234567":
                # up to three octal digits, three only when the first is 0-3 (a byte), as Java reads them
                j = i + 2
                limit = i + 4 if nxt in "0123" else i + 3
                while j < n and j < limit and text[j] in "01234567":
                    j += 1
                chars.append(chr(int(text[i + 1 : j], 8) & 0xFF))
                i = j
                continue
            chars.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        chars.append(ch)
        i += 1
    if i < n and text[i] == quote:
        i += 1
    return "".join(chars), i


def parse_jaas_config(text: str) -> list[JaasEntry]:
    """Every login-module entry of a `sasl.jaas.config` value; ValueError with Kafka's messages."""
    tokens = _tokens(text)
    entries: list[JaasEntry] = []
    pos = 0

    def value(k: int) -> str | None:
        return tokens[k][1] if k < len(tokens) else None

    while pos < len(tokens):
        module = value(pos)
        pos += 1
        if pos >= len(tokens):
            raise ValueError("Login module control flag not specified in JAAS config")
        flag = value(pos)
        pos += 1
        if flag is None:
            raise ValueError("Login module control flag is not available in the JAAS config")
        if flag.upper() not in _FLAGS:
            raise ValueError(f"Invalid login module control flag '{flag}' in JAAS config")
        options: dict[str, str] = {}
        terminated = False
        while pos < len(tokens):
            kind, key = tokens[pos]
            pos += 1
            if kind == "char" and key == ";":
                terminated = True
                break
            if (
                pos >= len(tokens)
                or tokens[pos] != ("char", "=")
                or pos + 1 >= len(tokens)
                or tokens[pos + 1][1] is None
                or tokens[pos + 1][0] == "char"
            ):
                raise ValueError(f"Value not specified for key '{key}' in JAAS config")
            options[str(key)] = str(tokens[pos + 1][1])
            pos += 2
        if not terminated:
            raise ValueError("JAAS config entry not terminated by semi-colon")
        entries.append(JaasEntry(str(module), flag.upper(), options))
    if not entries:
        raise ValueError("Login module not specified in JAAS config")
    return entries
