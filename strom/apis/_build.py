"""Build kio response dataclasses of any version from one set of keyword arguments.

Kafka's message versions add fields over time; a handler fills every field it knows and `build` keeps
only those the class of the requested version has, so one handler serves all versions.
"""

from __future__ import annotations

import dataclasses
import datetime
from functools import lru_cache
from typing import Any, get_args

from kio.static.primitive import i32Timedelta

__all__ = ["build", "entry_type", "fields_of", "no_throttle"]


@lru_cache(maxsize=4096)
def fields_of(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def build(cls: type, **values: Any) -> Any:
    names = fields_of(cls)
    return cls(**{k: v for k, v in values.items() if k in names})


@lru_cache(maxsize=4096)
def entry_type(cls: type, field_name: str) -> type:
    """The element class of a tuple field (e.g. MetadataResponse.topics -> MetadataResponseTopic)."""
    tp = cls.__dataclass_fields__[field_name].type
    args = get_args(tp)
    while args and not dataclasses.is_dataclass(args[0]):
        args = get_args(args[0])
    return args[0]


def no_throttle() -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(0))


def throttle_time(ms: int) -> i32Timedelta:
    """A response's throttle_time_ms field."""
    return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))
