"""A KRaft broker's controller channel checks the controller's ApiVersions before it sends: a controller
that serves none of the versions the broker sends is named, with the API and both versions, in one error
line instead of receiving a request it would close the connection on."""

from __future__ import annotations

from strom.cluster.kraft.broker import version_refusal
from strom.raft.messages import request_class


def test_a_served_version_goes_out() -> None:
    request = request_class(62, 4)
    assert version_refusal({62: (0, 4)}, request, ("127.0.0.1", 9093)) is None
    assert version_refusal({62: (0, 5)}, request, ("127.0.0.1", 9093)) is None  # a newer controller


def test_an_older_controller_is_named_with_the_api_and_versions() -> None:
    refusal = version_refusal({62: (0, 3)}, request_class(62, 4), ("127.0.0.1", 9093))
    assert refusal == (
        "the controller at ('127.0.0.1', 9093) does not serve BrokerRegistration (api 62) v4, which this "
        "broker sends (it serves v0-3)"
    )


def test_an_api_the_controller_lacks() -> None:
    refusal = version_refusal({}, request_class(56, 3), "c1:9093")
    assert refusal == (
        "the controller at c1:9093 does not serve AlterPartition (api 56) v3, which this broker sends "
        "(it does not serve the API)"
    )
