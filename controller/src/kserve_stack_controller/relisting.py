"""What a watch missed: the objects deleted while it was away.

kopf lists a kind again when its watch cannot resume from where it was (410 Gone: the API
server restarted or compacted past that point) and hands each listed object to the handlers
as an event of type None; of the objects the new listing no longer holds, deleted while no
watch was connected, it says nothing, so a cache fed by its events would keep them for
ever. controller-runtime's informers infer those deletions from the listing; ``reported``
does the same for kopf: it wraps kopf's listing function (``fetching.fetch_objs``, which
its watcher calls at the start of every watch stream; kopf's version is pinned) and, after
each complete listing, tells the callback what was listed and at which resourceVersion.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from kopf._cogs.clients import fetching

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    """One complete listing of a kind (its API group and plural) in ``namespace``
    (None: the whole cluster): the (namespace, name) of every object, at ``version``."""

    group: str
    plural: str
    namespace: str | None
    names: frozenset[tuple[str, str]]
    version: str | None


Callback = Callable[[Listing], Coroutine[Any, Any, None]]

_listeners: list[Callback] = []
_original = fetching.fetch_objs


async def _fetch_objs(*, resource: Any, namespace: Any, **kwargs: Any) -> AsyncIterator[Any]:
    names: set[tuple[str, str]] = set()
    version: str | None = None
    async for chunk, version in _original(resource=resource, namespace=namespace, **kwargs):
        for obj in chunk:
            meta = obj.get("metadata") or {}
            names.add((meta.get("namespace") or "", meta.get("name") or ""))
        yield chunk, version
    # Reached only when the whole listing was taken: a failed or abandoned one says nothing.
    listing = Listing(resource.group, resource.plural, namespace, frozenset(names), version)
    for listener in list(_listeners):
        try:
            await listener(listing)
        except Exception:  # a listener's fault must not end kopf's watch
            log.exception("handling the listing of %s failed", resource.plural)


@contextlib.contextmanager
def reported(callback: Callback) -> Iterator[None]:
    """Call ``callback`` after every complete listing kopf makes while in this block."""
    before = fetching.fetch_objs
    _listeners.append(callback)
    fetching.fetch_objs = _fetch_objs
    try:
        yield
    finally:
        _listeners.remove(callback)
        if not _listeners:
            fetching.fetch_objs = before
