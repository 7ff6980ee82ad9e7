"""Sans-io Kafka protocol: frames, headers, the API registry, record batches and error codes.

Nothing here imports asyncio or opens files.
"""
