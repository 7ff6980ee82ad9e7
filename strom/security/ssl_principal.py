"""The principal of a TLS client certificate, as Kafka names it (KIP-371).

Kafka's DefaultKafkaPrincipalBuilder takes the peer certificate's subject as `X500Principal.getName()`,
the RFC 2253 string (`CN=alice,OU=eng,O=Example,C=DE`: the last RDN first; CN, C, L, ST, O, OU, STREET,
DC and UID by keyword, any other attribute as `<oid>=#<DER hex>`; `,=+<>#;"\\` escaped with a
backslash), then shapes it with `ssl.principal.mapping.rules`:

    RULE:<java regex>/<replacement>/[LU], ..., DEFAULT

The first rule whose pattern matches the whole DN gives the name (the replacement as Java's
`String.replaceAll` applies it, `$1` back references, `/L` lower case, `/U` upper case); `DEFAULT` gives
the DN unchanged; no matching rule fails the connection (Kafka's NoMatchingRule). The subject is read
from the DER certificate with a small DER walker, so the string is exactly Java's, with no
dependency beyond the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["NoMatchingRule", "SslPrincipalMapper", "subject_dn"]

# Kafka's SslPrincipalMapper patterns, unchanged (Python's re reads them as Java does)
_RULE_PATTERN = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE_PATTERN + r")\s*(,\s*|$)")
_RULE_PARSER = re.compile(_RULE_PATTERN)
_BACK_REFERENCE = re.compile(r"\$(\d+)")


class NoMatchingRule(ValueError):
    """No rule of ssl.principal.mapping.rules applies to a DN (the connection is refused)."""


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    lower: bool = False
    upper: bool = False

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        if self.pattern.fullmatch(dn) is None:
            return None
        groups = self.pattern.groups
        template = _escape_literal_back_references(self.replacement, groups)
        result = self.pattern.sub(lambda m: _java_replacement(template, m), dn)
        if self.lower:
            return result.lower()
        if self.upper:
            return result.upper()
        return result


class SslPrincipalMapper:
    """`ssl.principal.mapping.rules` parsed once per listener; `name(dn)` maps one DN."""

    def __init__(self, rules: str | None = "DEFAULT") -> None:
        self.rules = _parse_rules(_split_rules(rules if rules is not None else "DEFAULT"))

    def name(self, dn: str) -> str:
        for rule in self.rules:
            result = rule.apply(dn)
            if result is not None:
                return result
        raise NoMatchingRule(f"No rules apply to {dn}")


def _split_rules(rules: str) -> list[str]:
    return [m.group(1) for m in _RULE_SPLITTER.finditer(rules.strip())]


def _parse_rules(rules: list[str]) -> list[_Rule]:
    parsed: list[_Rule] = []
    for rule in rules:
        m = _RULE_PARSER.match(rule)
        if m is None:
            raise ValueError(f"Invalid rule: {rule}")
        if m.end() != len(rule):
            raise ValueError(f"Invalid rule: `{rule}`, unmatched substring: `{rule[m.end() :]}`")
        if m.group(1) is not None:
            parsed.append(_Rule(None))
        elif m.group(2) is not None:
            try:
                pattern = re.compile(m.group(2))
            except re.error as exc:
                raise ValueError(f"Invalid rule: {rule}: {exc}") from None
            parsed.append(_Rule(pattern, m.group(4) or "", m.group(6) == "L", m.group(6) == "U"))
        # an empty rule is ignored, as in Kafka
    return parsed


def _escape_literal_back_references(replacement: str, groups: int) -> str:
    """Kafka's escapeLiteralBackReferences: `$n` naming no group is a literal `$n` (after shortening
    `$123` to `$12` or `$1` as Java's own parsing would)."""
    if groups == 0:
        return replacement
    value = replacement
    for m in list(_BACK_REFERENCE.finditer(replacement)):
        digits = m.group(1)
        if digits.startswith("0"):
            continue
        index = int(digits)
        while index > groups and index >= 10:
            index //= 10
        if index > groups:
            # the same offset in `value`: each escape so far added one character before this one
            shift = len(value) - len(replacement)
            at = m.start() + shift
            value = value[:at] + "\\" + value[at:]
    return value


def _java_replacement(template: str, match: re.Match[str]) -> str:
    """Java's Matcher.appendReplacement: `\\c` is c, `$n` the group (digits taken while a group by that
    number exists)."""
    out: list[str] = []
    i = 0
    groups = match.re.groups
    while i < len(template):
        c = template[i]
        if c == "\\" and i + 1 < len(template):
            out.append(template[i + 1])
            i += 2
        elif c == "$" and i + 1 < len(template) and template[i + 1].isdigit():
            ref = int(template[i + 1])
            if ref > groups:
                raise ValueError(f"No group {ref}")
            i += 2
            while i < len(template) and template[i].isdigit() and ref * 10 + int(template[i]) <= groups:
                ref = ref * 10 + int(template[i])
                i += 1
            out.append(match.group(ref) or "")
        else:
            out.append(c)
            i += 1
    return "".join(out)


# --- the subject DN of a DER certificate, as Java's X500Principal.getName() ------------------------------
_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# Java writes these DER string types as text (decoding their bytes as UTF-8, whatever the type), others as hex
_DER_STRINGS = frozenset({12, 19, 20, 22, 27, 30})  # UTF8, Printable, T61, IA5, General, BMP
_ESCAPED = ',=+<>#;"\\'


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `pos`."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element inside a constructed value."""
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _tlv(buf, pos)
        out.append((tag, pos, vstart, vend))
        pos = vend
    return out


def _oid(raw: bytes) -> str:
    first = raw[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _escape(value: str) -> str:
    """Java's AVA.toRFC2253String: escapees and NUL, then every leading and trailing space or CR."""
    out = []
    for c in value:
        if c in _ESCAPED:
            out.append("\\" + c)
        elif c == "\x00":
            out.append("\\00")
        else:
            out.append(c)
    chars = "".join(out)
    lead = len(chars) - len(chars.lstrip(" \r"))
    trail = len(chars.rstrip(" \r"))
    return "".join("\\" + c if i < lead or i >= trail else c for i, c in enumerate(chars))


def _ava(der: bytes, start: int, end: int) -> str:
    (_t, _s, oid_start, oid_end), (tag, elem_start, vstart, vend) = _children(der, start, end)[:2]
    oid = _oid(der[oid_start:oid_end])
    keyword = _KEYWORDS.get(oid)
    if keyword is not None and tag in _DER_STRINGS:
        return f"{keyword}={_escape(der[vstart:vend].decode('utf-8', errors='replace'))}"
    return f"{keyword or oid}=#{der[elem_start:vend].hex()}"


def subject_dn(der: bytes) -> str:
    """The subject of a DER X.509 certificate as Java's RFC 2253 string (the last RDN first)."""
    _tag, cert_start, _end = _tlv(der, 0)
    _tag, tbs_start, tbs_end = _tlv(der, cert_start)
    fields = _children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    _tag, _e, subject_start, subject_end = fields[4]
    rdns = []
    for _t, _e, set_start, set_end in _children(der, subject_start, subject_end):
        avas = [_ava(der, s, e) for _t2, _e2, s, e in _children(der, set_start, set_end)]
        rdns.append("+".join(avas))
    return ",".join(reversed(rdns))
