"""Keeps the operator's ObjectCache current from kopf's watches of InferenceServices and of
their children (the cache is filled once at start by ``cache.prime``), so that reconciles
read them from memory (``cache.CachedKube``).

One async handler per kind: it runs on the event loop (no thread hop, so an object's events
are taken in their order) and, registered first, before the other handlers of the same
event, which therefore read the event's object from the cache.

``listing_handler``: after kopf lists a kind again (its watch could not resume), the
objects that listing no longer holds are forgotten as if their DELETED events had come: a
child's owner is reconciled (the child is put back), an InferenceService is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.cache import CACHED_KINDS, CHILD_KINDS, ISVC_KIND
from kserve_stack_controller.constants import LABEL_ISVC, LABEL_MANAGED_BY, MANAGED_BY
from kserve_stack_controller.kube import KINDS
from kserve_stack_controller.relisting import Callback, Listing
from kserve_stack_controller.state import Operator

log = logging.getLogger(__name__)


def _watched_as(kind: str) -> tuple[str, str]:
    """kopf's (group/version or "v1" for the core group, plural) of one of our kinds."""
    prefix, plural = KINDS[kind].prefix, KINDS[kind].plural
    return prefix.removeprefix("apis/").removeprefix("api/"), plural


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    """Register before the other handlers (kopf calls them in the order of registration)."""
    cache = operator.cache

    def in_scope(namespace: str | None, **_: Any) -> bool:
        return operator.in_scope(namespace)

    children: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ISVC: kopf.PRESENT}
    for kind in (*CHILD_KINDS, ISVC_KIND):
        where = _watched_as(kind)
        filters: dict[str, Any] = {"when": in_scope} if kind == ISVC_KIND else {"labels": children}

        async def taken_in(event: kopf.RawEvent, kind: str = kind, **_: Any) -> None:
            obj = event.get("object") or {}
            if event.get("type") == "DELETED":
                cache.remove(kind, obj)
                if kind == ISVC_KIND:  # kopf calls no delete handler without a finalizer
                    operator.forget(str((obj.get("metadata") or {}).get("uid")))
            else:  # None (kopf's listing), ADDED, MODIFIED
                cache.offer(kind, obj)

        kopf.on.event(*where, registry=registry, id=f"cache-{kind}", **filters)(taken_in)


def listing_handler(operator: Operator) -> Callback:
    """The callback of ``relisting.reported``: see the module's docstring."""
    kinds = {}
    for kind in CACHED_KINDS:
        api_version, plural = _watched_as(kind)
        kinds[(api_version.rpartition("/")[0], plural)] = kind

    async def listed(listing: Listing) -> None:
        kind = kinds.get((listing.group, listing.plural))
        if kind is None or kind not in operator.cache.primed:
            return
        gone = operator.cache.drop_unlisted(kind, listing.namespace, listing.names, listing.version)
        for obj in gone:
            meta = obj["metadata"]
            log.info(
                "%s %s/%s was deleted while the watch was away (listed again at version %s)",
                kind,
                meta.get("namespace"),
                meta.get("name"),
                listing.version,
            )
            if kind == ISVC_KIND:
                operator.forget(str(meta.get("uid")))
                continue
            try:
                if ISVC_KIND in operator.cache.primed:
                    isvc = operator.owner_of(obj)
                else:  # read from the API server: not on the event loop
                    isvc = await asyncio.to_thread(operator.owner_of, obj)
            except (ApiException, urllib3.exceptions.HTTPError) as err:
                log.warning(
                    "could not find the owner of %s %s/%s: %s",
                    kind,
                    meta.get("namespace"),
                    meta.get("name"),
                    getattr(err, "reason", None) or type(err).__name__,
                )
                continue
            if isvc is not None:
                operator.refresh(isvc, quick=False)

    return listed
