"""Keeps the operator's ObjectCache current from kopf's watches of InferenceServices and of
their children (the cache is filled once at start by ``cache.prime``), so that reconciles
read them from memory (``cache.CachedKube``).

One async handler per kind: it runs on the event loop (no thread hop, so an object's events
are taken in their order) and, registered first, before the other handlers of the same
event, which therefore read the event's object from the cache.
"""

from __future__ import annotations

from typing import Any

import kopf

from kserve_stack_controller.cache import CHILD_KINDS, ISVC_KIND
from kserve_stack_controller.constants import LABEL_ISVC, LABEL_MANAGED_BY, MANAGED_BY
from kserve_stack_controller.kube import KINDS
from kserve_stack_controller.state import Operator


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    """Register before the other handlers (kopf calls them in the order of registration)."""
    cache = operator.cache

    def in_scope(namespace: str | None, **_: Any) -> bool:
        return operator.in_scope(namespace)

    children: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ISVC: kopf.PRESENT}
    for kind in (*CHILD_KINDS, ISVC_KIND):
        prefix, plural = KINDS[kind].prefix, KINDS[kind].plural
        where = (prefix.removeprefix("apis/").removeprefix("api/"), plural)  # "v1": core
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
