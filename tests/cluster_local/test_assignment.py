"""Kafka's rack-unaware replica assignment."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from strom.cluster.assignment import assign_replicas, start_index_for_new_partitions
from strom.cluster.errors import InvalidPartitionsError, InvalidReplicationFactorError


def test_matches_kafkas_documented_layout() -> None:
    # The table in Kafka's AdminUtils comment: 5 brokers, 10 partitions, rf 3, start index 0, shift 0.
    got = assign_replicas([0, 1, 2, 3, 4], 10, 3, rng=random.Random(1), fixed_start_index=0)
    assert got == {
        0: [0, 1, 2],
        1: [1, 2, 3],
        2: [2, 3, 4],
        3: [3, 4, 0],
        4: [4, 0, 1],
        5: [0, 2, 3],
        6: [1, 3, 4],
        7: [2, 4, 0],
        8: [3, 0, 1],
        9: [4, 1, 2],
    }


@pytest.mark.parametrize("seed", range(20))
def test_leaders_round_robin_and_replicas_distinct(seed: int) -> None:
    brokers = [3, 1, 7, 5]
    got = assign_replicas(brokers, 8, 3, rng=random.Random(seed))
    assert sorted(got) == list(range(8))
    for replicas in got.values():
        assert len(set(replicas)) == 3
        assert set(replicas) <= set(brokers)
    leaders = Counter(r[0] for r in got.values())
    assert set(leaders.values()) == {2}
    # consecutive partitions lead on consecutive (sorted) brokers
    ordered = sorted(brokers)
    firsts = [ordered.index(got[p][0]) for p in range(8)]
    assert all((b - a) % 4 == 1 for a, b in itertools.pairwise(firsts))


def test_random_start_comes_from_injected_rng() -> None:
    starts = {assign_replicas([0, 1, 2, 3], 1, 1, rng=random.Random(s))[0][0] for s in range(40)}
    assert starts == {0, 1, 2, 3}
    a = assign_replicas([0, 1, 2], 6, 2, rng=random.Random(42))
    b = assign_replicas([0, 1, 2], 6, 2, rng=random.Random(42))
    assert a == b


def test_start_partition_id_continues_numbering() -> None:
    got = assign_replicas([0, 1, 2], 2, 1, rng=random.Random(0), fixed_start_index=0, start_partition_id=3)
    assert got == {3: [0], 4: [1]}
    assert start_index_for_new_partitions([1, 4, 9], 4) == 1
    assert start_index_for_new_partitions([1, 4, 9], 5) == 2


def test_errors() -> None:
    with pytest.raises(InvalidReplicationFactorError, match="larger than available brokers: 1"):
        assign_replicas([1], 1, 3, rng=random.Random(0))
    with pytest.raises(InvalidPartitionsError):
        assign_replicas([1], 0, 1, rng=random.Random(0))
    with pytest.raises(InvalidReplicationFactorError):
        assign_replicas([1], 1, 0, rng=random.Random(0))
