"""Free TCP ports for the servers that tests and benchmarks start in other processes (Strom nodes, Kafka's
JVMs, ZooKeeper), which must be told their port before they bind it.

A port from `bind(port 0)` comes from the kernel's ephemeral range, the range outgoing connections take their
local port from. In the moment between picking such a port and the server binding it, a client connecting
anywhere can be given that port as its local one, and a node that connects to a peer whose listener is not
up yet can even connect to itself (TCP's simultaneous open, when source and destination port coincide); the
server then fails to bind and exits. Ports below the ephemeral range are never handed to outgoing
connections, so they are picked from there, and never twice by one process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default; macOS and Windows start theirs at 49152
_SPAN = 20000
_TRIES = 200

_handed_out: set[int] = set()
_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers bind theirs: a port whose old connections linger in TIME_WAIT is free to listen on
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on now, below the ephemeral range, not returned before by
    this process. Falls back to a kernel-chosen port if none of a few hundred random tries is free."""
    high = _ephemeral_low()
    low = max(1024, high - _SPAN)
    with _lock:
        for _ in range(_TRIES):
            port = random.randrange(low, high)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        _handed_out.add(port)
        return port
