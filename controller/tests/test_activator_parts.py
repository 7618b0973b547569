"""The activator's pure parts: target and hold headers, EndpointSlice readiness, waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kserve_stack_controller.activator.endpoints import Endpoint, Endpoints, slice_state
from kserve_stack_controller.activator.proxy import (
    ProxySettings,
    TargetError,
    parse_hold,
    parse_target,
)
from kubernetes import client

TARGETS = [
    ("ok", "ns1/demo-predictor", ("ns1", "demo-predictor"), None),
    ("spaces-trimmed", " ns1/demo ", ("ns1", "demo"), None),
    ("missing", None, None, "missing header"),
    ("no-slash", "demo", None, "is not NAMESPACE/SERVICE"),
    ("upper-case", "NS/demo", None, "is not NAMESPACE/SERVICE"),
    ("three-parts", "a/b/c", None, "is not NAMESPACE/SERVICE"),
]


@pytest.mark.parametrize(("value", "key", "error"), [c[1:] for c in TARGETS],
                         ids=[c[0] for c in TARGETS])  # fmt: skip
def test_parse_target(value: str | None, key: tuple[str, str] | None, error: str | None) -> None:
    if error is None:
        assert parse_target(value) == key
    else:
        with pytest.raises(TargetError, match=error) as raised:
            parse_target(value)
        assert raised.value.status == 400


HOLDS = [
    ("default", None, 300.0, None),
    ("given", "20", 20.0, None),
    ("capped", "5000", 900.0, None),
    ("zero", "0", None, "positive"),
    ("text", "soon", None, "positive"),
]


@pytest.mark.parametrize(("value", "seconds", "error"), [c[1:] for c in HOLDS],
                         ids=[c[0] for c in HOLDS])  # fmt: skip
def test_parse_hold(value: str | None, seconds: float | None, error: str | None) -> None:
    settings = ProxySettings(hold_timeout=300, max_hold_timeout=900)
    if error is None:
        assert parse_hold(value, settings) == seconds
    else:
        with pytest.raises(TargetError, match=error):
            parse_hold(value, settings)


def _slice(endpoints: list[dict[str, Any]], ports: list[tuple[str | None, int]]) -> Any:
    return client.V1EndpointSlice(
        address_type="IPv4",
        metadata=client.V1ObjectMeta(name="s-1", namespace="ns1",
                                     labels={"kubernetes.io/service-name": "s"}),
        ports=[client.DiscoveryV1EndpointPort(name=n, port=p) for n, p in ports],
        endpoints=[client.V1Endpoint(addresses=e["addresses"],
                                     conditions=client.V1EndpointConditions(ready=e.get("ready")))
                   for e in endpoints],
    )  # fmt: skip


SLICES = [
    ("ready", [{"addresses": ["10.0.0.1"], "ready": True}], [("http", 8080)], ["10.0.0.1:8080"]),
    ("not-ready", [{"addresses": ["10.0.0.1"], "ready": False}], [("http", 8080)], []),
    ("unknown-is-ready", [{"addresses": ["10.0.0.1"]}], [("http", 8080)], ["10.0.0.1:8080"]),
    ("named-port-chosen", [{"addresses": ["10.0.0.1"], "ready": True}],
     [("grpc", 9000), ("http", 8080)], ["10.0.0.1:8080"]),
    ("single-port-any-name", [{"addresses": ["10.0.0.1"], "ready": True}], [(None, 7000)],
     ["10.0.0.1:7000"]),
    ("no-matching-port", [{"addresses": ["10.0.0.1"], "ready": True}],
     [("grpc", 9000), ("metrics", 9090)], []),
]  # fmt: skip


@pytest.mark.parametrize(("endpoints", "ports", "ready"), [c[1:] for c in SLICES],
                         ids=[c[0] for c in SLICES])  # fmt: skip
def test_slice_state(endpoints: list[dict[str, Any]], ports: list[tuple[str | None, int]],
                     ready: list[str]) -> None:  # fmt: skip
    state = slice_state(_slice(endpoints, ports), "http")
    assert (state.namespace, state.service) == ("ns1", "s")
    assert [str(e) for e in state.ready] == ready


async def test_waiters_wake_on_ready_and_time_out() -> None:
    endpoints = Endpoints()
    key = ("ns1", "s")
    empty = slice_state(_slice([], [("http", 8080)]), "http")
    endpoints.replace("ns1", [empty])
    assert endpoints.known(key) and endpoints.pick(key) is None
    assert await endpoints.wait_ready(key, 0.05) is None

    waiter = asyncio.create_task(endpoints.wait_ready(key, 5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    ready = [{"addresses": ["10.0.0.1", "10.0.0.2"], "ready": True}]
    endpoints.upsert(slice_state(_slice(ready, [("http", 8080)]), "http"))
    assert await asyncio.wait_for(waiter, 1) == Endpoint("10.0.0.1", 8080)
    # Round-robin over the ready endpoints.
    assert {str(endpoints.pick(key)) for _ in range(4)} == {"10.0.0.1:8080", "10.0.0.2:8080"}
    endpoints.delete(empty)
    assert not endpoints.known(key)
