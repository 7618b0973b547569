"""Objects deleted while a watch was away: kopf's listing is reported after it completes,
the cache forgets what the listing no longer holds (not what was written after it), a
forgotten child's owner is reconciled and a forgotten InferenceService is dropped."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from kopf._cogs.clients import fetching, watching
from kserve_stack_controller import relisting
from kserve_stack_controller.cache import CACHED_KINDS, ISVC_KIND, ObjectCache
from kserve_stack_controller.handlers.caching import listing_handler
from kserve_stack_controller.state import Operator, Settings
from test_cache import RecordingKube, isvc_body, obj


def test_drop_unlisted_forgets_only_what_the_listing_should_have_held() -> None:
    cache = ObjectCache()
    cache.offer("Deployment", obj("listed", "10"))
    cache.offer("Deployment", obj("deleted", "12"))
    cache.offer("Deployment", obj("written-after", "30"))  # newer than the listing
    cache.offer("Deployment", obj("elsewhere", "11", ns="other"))
    cache.offer("Service", obj("other-kind", "5"))
    gone = cache.drop_unlisted("Deployment", "ns", {("ns", "listed")}, "20")
    assert [o["metadata"]["name"] for o in gone] == ["deleted"]
    assert cache.get("Deployment", "ns", "deleted") is None
    assert not cache.offer("Deployment", obj("deleted", "12"))  # a late event stays dead
    for name in ("listed", "written-after"):
        assert cache.get("Deployment", "ns", name) is not None
    assert cache.get("Deployment", "other", "elsewhere") is not None
    assert cache.get("Service", "ns", "other-kind") is not None
    # A cluster-wide listing covers every namespace; a listing without a version, nothing.
    assert cache.drop_unlisted("Deployment", None, {("ns", "listed")}, None) == []
    gone = cache.drop_unlisted("Deployment", None, {("ns", "listed")}, "20")
    assert [o["metadata"]["name"] for o in gone] == ["elsewhere"]


class _Deployments:
    group, plural = "apps", "deployments"


RESOURCE = cast(Any, _Deployments())  # what kopf's watcher passes, as far as read


def test_kopf_lists_through_the_wrapped_function() -> None:
    # The hook relies on kopf's watcher calling fetching.fetch_objs through the module.
    assert "fetching.fetch_objs(" in inspect.getsource(watching.continuous_watch)


def test_a_complete_listing_is_reported_and_an_abandoned_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def pages(**_: Any) -> AsyncIterator[Any]:
        yield [obj("a", "1")], "7"
        yield [obj("b", "2", ns="other")], "7"

    monkeypatch.setattr(relisting, "_original", pages)
    seen: list[relisting.Listing] = []

    async def listener(listing: relisting.Listing) -> None:
        seen.append(listing)

    async def consume(stop_after: int | None = None) -> None:
        taken = 0
        async for _chunk, _version in fetching.fetch_objs(  # type: ignore[call-arg]
            resource=RESOURCE, namespace=None
        ):
            taken += 1
            if taken == stop_after:
                break

    original = fetching.fetch_objs
    with relisting.reported(listener):
        asyncio.run(consume(stop_after=1))
        assert seen == []
        asyncio.run(consume())
    assert fetching.fetch_objs is original  # put back after the block
    assert seen == [
        relisting.Listing(
            "apps", "deployments", None, frozenset({("ns", "a"), ("other", "b")}), "7"
        )
    ]


def test_a_listener_that_fails_does_not_end_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def pages(**_: Any) -> AsyncIterator[Any]:
        yield [obj("a", "1")], "7"

    monkeypatch.setattr(relisting, "_original", pages)

    async def broken(listing: relisting.Listing) -> None:
        raise RuntimeError("a bug")

    async def consume() -> int:
        return len([c async for c in fetching.fetch_objs(resource=RESOURCE, namespace=None)])  # type: ignore[call-arg]

    with relisting.reported(broken):
        assert asyncio.run(consume()) == 1


def test_a_child_gone_unseen_is_put_back_and_a_gone_service_forgotten() -> None:
    operator = Operator(RecordingKube(), Settings(namespaces=["ns"]))
    operator.cache.primed.update(CACHED_KINDS)
    isvc = isvc_body("5", uid="u-1")
    operator.cache.offer(ISVC_KIND, isvc)
    child = obj("iris-predictor", "6")
    child["metadata"]["ownerReferences"] = [{"uid": "u-1", "kind": "InferenceService"}]
    operator.cache.offer("Deployment", child)
    refreshed: list[tuple[str, bool]] = []
    operator.refresh = lambda body, quick: refreshed.append(  # type: ignore[method-assign]
        (body["metadata"]["uid"], quick)
    )
    forgotten: list[str] = []
    operator.forget = forgotten.append  # type: ignore[method-assign,assignment]
    listed = listing_handler(operator)

    asyncio.run(listed(relisting.Listing("apps", "deployments", "ns", frozenset(), "9")))
    assert refreshed == [("u-1", False)]  # a full reconcile: the Deployment is applied again
    assert operator.cache.get("Deployment", "ns", "iris-predictor") is None

    asyncio.run(
        listed(relisting.Listing("serving.kserve.io", "inferenceservices", "ns", frozenset(), "9"))
    )
    assert forgotten == ["u-1"]
    assert operator.cache.get(ISVC_KIND, "ns", "iris") is None
    # Kinds the operator does not cache are ignored.
    asyncio.run(listed(relisting.Listing("", "pods", "ns", frozenset(), "9")))
    assert refreshed == [("u-1", False)]
