"""Record batch v2 (magic 2) header: parse, validate, and the few in-place rewrites the broker does.

Layout (61 bytes, big-endian), per Kafka's protocol guide "Record Batch":
  baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
  attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
  producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32
The CRC-32C covers attributes to the end of the batch, so rewriting baseOffset or partitionLeaderEpoch
keeps it valid; stamping LogAppendTime (maxTimestamp, attribute bit 3) needs a new CRC.

CONTRACT (implemented by the storage work; other code relies on these names):
  BATCH_HEADER_SIZE = 61; LOG_OVERHEAD = 12 (offset + length)
  @dataclass BatchHeader(base_offset, batch_length, partition_leader_epoch, magic, crc, attributes,
      last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch, base_sequence,
      records_count) with properties: last_offset, size (= batch_length + 12), compression (0..4),
      timestamp_type (0 create, 1 log append), is_transactional, is_control, has_producer_id
  parse_header(buf, pos=0) -> BatchHeader
  validate_batches(buf: bytes | bytearray | memoryview) -> list[BatchHeader]
      (magic 2, CRC-32C, batch_length fits, records_count == last_offset_delta + 1 for non-empty
       uncompressed, whole buffer consumed; raises strom.protocol.errors.CorruptRecordError)
  iter_batches(buf, pos=0) -> Iterator[tuple[int, BatchHeader]]  (position of each whole batch; stops at a
      partial trailing batch without raising)
  set_base_offset(buf: bytearray, pos, offset); set_partition_leader_epoch(buf: bytearray, pos, epoch)
  stamp_log_append_time(buf: bytearray, pos, timestamp_ms)  (sets attribute bit 3, max timestamp, CRC)
"""
