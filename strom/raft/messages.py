"""Building kio request and response dataclasses of any version from one set of keyword arguments.

The Raft APIs grew fields version by version (Vote v1 adds voter_id and directory ids, v2 pre_vote;
Fetch v15 replica_state; DescribeQuorum v2 nodes and timestamps), and kio has one dataclass per version.
`build(cls, **fields)` keeps the fields `cls` has and drops the rest, so the core writes each message once
and answers every version a peer may send. `item(cls, name)` is the element type of a list field, or the
type of a struct field, of `cls`. Sans-io; types only.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
from functools import lru_cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.static.primitive import i32Timedelta

from strom.protocol.errors import ErrorCode

__all__ = ["build", "field_names", "item", "request_class", "response_class", "zero_throttle"]


@lru_cache(maxsize=512)
def field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


@lru_cache(maxsize=512)
def item(cls: type, name: str) -> Any:
    """The element type of list field `name` of `cls`, or the type of a struct field."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args:
        return args[0]
    if args:  # X | None
        return next(a for a in args if a is not type(None))
    return hint


def build(cls: type, **fields: Any) -> Any:
    names = field_names(cls)
    return cls(**{k: v for k, v in fields.items() if k in names})


def request_class(api_key: int, version: int) -> type:
    return load_request_schema(api_key, version)


def response_class(api_key: int, version: int) -> type:
    return load_response_schema(api_key, version)


def zero_throttle() -> Any:
    return i32Timedelta.parse(datetime.timedelta(0))


def error_of(value: Any) -> ErrorCode:
    return ErrorCode(int(value))
