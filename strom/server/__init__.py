"""The asyncio server: the broker process lifecycle, the listener, connections, request dispatch and the
purgatories that hold delayed produce and fetch requests."""
