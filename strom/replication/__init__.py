"""Partitions and their replication state: leader epoch, ISR, high watermark (KIP-101, KIP-279)."""
