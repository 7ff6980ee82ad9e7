"""strom.testing.ports: ports for servers started in other processes lie below the kernel's ephemeral range
(so no outgoing connection can hold one before its server binds it), are free, and are not handed out
twice."""

from __future__ import annotations

import socket

from strom.testing import ports


def test_ports_are_below_the_ephemeral_range_free_and_distinct() -> None:
    low = ports._ephemeral_low()
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == len(picked)
    assert all(1024 <= port < low for port in picked), (low, picked)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", picked[-1]))
        sock.listen()


def test_a_port_something_listens_on_counts_as_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.free_port()))
        sock.listen()
        assert not ports._bindable("127.0.0.1", sock.getsockname()[1])
