"""Property tests of the log cleaner against a model (the list of everything appended).

For random appends (several keys, values, tombstones, codecs, batch sizes), clock advances and cleaner
passes: the latest value of every key survives; offsets only increase and every surviving record is the
one written at its offset; a consumer starting at any offset sees exactly the suffix of the full view;
tombstones stay at least delete.retention.ms after they were written and are gone once their horizon
has passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_cleaner_support import COMPACT, make_cleaner, put_many, read_all

from strom.storage.log import Log

RETENTION = COMPACT.delete_retention_ms
CONFIG = dataclasses.replace(COMPACT, segment_bytes=700)

keys = st.sampled_from([b"a", b"b", b"c", b"d", b"e"])
values = st.one_of(st.none(), st.binary(min_size=1, max_size=20))
append = st.tuples(
    st.just("append"),
    st.lists(st.tuples(keys, values), min_size=1, max_size=4),
    st.sampled_from([0, 0, 1, 3, 4]),
)
advance = st.tuples(st.just("advance"), st.integers(min_value=1, max_value=RETENTION // 2), st.just(0))
clean = st.tuples(st.just("clean"), st.just(0), st.just(0))
operations = st.lists(st.one_of(append, append, append, advance, clean), min_size=1, max_size=40)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> float:
        return self.ms / 1000


def _model_latest(
    written: list[tuple[int, bytes, bytes | None, int]],
) -> dict[bytes, tuple[int, bytes | None, int]]:
    state: dict[bytes, tuple[int, bytes | None, int]] = {}
    for offset, key, value, ts in written:
        state[key] = (offset, value, ts)
    return state


def _check(log: Log, written: list[tuple[int, bytes, bytes | None, int]], now_ms: int) -> None:
    full = read_all(log)
    offsets = [o for o, _k, _v in full]
    assert offsets == sorted(set(offsets)), "offsets must strictly increase"
    by_offset = {o: (k, v) for o, k, v, _ts in written}
    assert all(by_offset[o] == (k, v) for o, k, v in full), "a record changed"
    present = {o for o in offsets}
    for key, (offset, value, ts) in _model_latest(written).items():
        if value is not None:
            assert offset in present, f"latest value of {key!r} lost"
        elif now_ms < ts + RETENTION:
            assert offset in present, f"tombstone of {key!r} removed before delete.retention.ms"
        # older records of a key may only survive where compaction has not reached yet; the latest
        # one is what the view ends with
        keyed = [o for o, k, _v in full if k == key]
        if keyed:
            assert keyed[-1] == offset or offset not in present
    for start in range(0, log.log_end_offset + 1):
        assert read_all(log, start) == [r for r in full if r[0] >= start]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_cleaning_preserves_the_model(ops: list[tuple[str, object, int]]) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.open(Path(tmp) / "topic-0", CONFIG, clock=clock)
        cleaner = make_cleaner(log, clock)
        written: list[tuple[int, bytes, bytes | None, int]] = []
        try:
            for kind, arg, codec in ops:
                if kind == "append":
                    pairs = arg  # type: ignore[assignment]
                    first = put_many(log, pairs, clock.ms, codec=codec)  # type: ignore[arg-type]
                    for i, (key, value) in enumerate(pairs):  # type: ignore[misc, arg-type]
                        written.append((first + i, key, value, clock.ms))
                elif kind == "advance":
                    clock.ms += arg  # type: ignore[operator]
                else:
                    asyncio.run(cleaner.clean_once())
                    _check(log, written, clock.ms)
            _check(log, written, clock.ms)
            # expiry: once everything is cleanable and every horizon has passed, no tombstone is left
            log.roll()
            asyncio.run(cleaner.clean_once())
            clock.ms += RETENTION + 1
            asyncio.run(cleaner.clean_once())
            _check(log, written, clock.ms)
            remaining = read_all(log)
            event(f"cleaner passes: {min(cleaner.passes, 3)}{'+' if cleaner.passes >= 3 else ''}")
            assert all(v is not None for _o, _k, v in remaining)
            model = {k: v for k, (_o, v, _ts) in _model_latest(written).items() if v is not None}
            assert {k: v for _o, k, v in remaining} == model
            assert len(remaining) == len(model)
        finally:
            log.close()


def test_model_check_can_fail() -> None:
    """The checker itself notices a lost latest value (guards against a vacuous property)."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.open(Path(tmp) / "topic-0", CONFIG, clock=clock)
        try:
            put_many(log, [(b"a", b"1")], clock.ms)
            written = [(0, b"a", b"1", clock.ms), (1, b"a", b"2", clock.ms)]
            try:
                _check(log, written, clock.ms)
            except AssertionError:
                return
            raise RuntimeError("the model check accepted a log missing the latest value")
        finally:
            log.close()
