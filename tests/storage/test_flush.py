"""flush.messages and flush.ms: the recovery point moves when the topic asks for an fsync, and only then
(Kafka's default leaves flushing to the OS); a roll makes the rolled segment due for a flush."""

from __future__ import annotations

from strom.config import LogConfig


def test_flush_messages_moves_the_recovery_point_every_n_messages(open_log, clock, batch):
    log = open_log(LogConfig(flush_messages=3))
    log.append(batch([b"a"], timestamp=clock.ms), leader_epoch=0)
    log.append(batch([b"b"], timestamp=clock.ms), leader_epoch=0)
    assert log.recovery_point == 0
    log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=0)
    assert log.recovery_point == 3
    log.append(batch([b"d", b"e"], timestamp=clock.ms), leader_epoch=0)
    assert log.recovery_point == 3
    log.append(batch([b"f"], timestamp=clock.ms), leader_epoch=0)
    assert log.recovery_point == 6


def test_default_leaves_flushing_to_the_os(open_log, clock, batch):
    log = open_log()
    for _ in range(50):
        log.append(batch([b"x"], timestamp=clock.ms), leader_epoch=0)
    clock.advance(3_600_000)
    assert log.recovery_point == 0
    assert log.flush_due(clock.ms) is None


def test_flush_ms_makes_unflushed_data_due(open_log, clock, batch):
    log = open_log(LogConfig(flush_ms=1000))
    assert log.flush_due(clock.ms) is None  # nothing unflushed yet
    log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=0)
    clock.advance(999)
    assert log.flush_due(clock.ms) is None
    clock.advance(1)
    assert log.flush_due(clock.ms) == 2
    log.flush(2)
    assert log.recovery_point == 2 and log.flush_due(clock.ms) is None


def test_a_roll_makes_the_rolled_segment_due(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=0)
    log.roll()
    assert log.flush_due(clock.ms) == 2
    log.flush(log.flush_due(clock.ms))
    assert log.recovery_point == 2 and log.flush_due(clock.ms) is None
