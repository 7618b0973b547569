"""What a reconcile reads, served from memory instead of the API server.

``RuntimeCache``: ServingRuntimes and ClusterServingRuntimes, listed once per scope and kept
until their watch reports a change, so that a reconcile does not list them for every
InferenceService. The runtime watchers (``handlers/servingruntime.py``) call ``invalidate``
on every event, the initial listing and the re-listing after a lost watch included. A
listing that raced with an invalidation is used once and not kept.

``ObjectCache`` and ``CachedKube``: the InferenceServices and their children, listed
once at start (``prime``) and then kept current by kopf's watches (``handlers/caching.py``),
and a client that answers ``get`` and ``list`` of those kinds from them, as
controller-runtime's cached client does, and writes to the API server (keeping what the
server answered). So a reconcile makes no request before the Deployment's apply, and a
child's event costs no request to find its owner. A kind that could not be listed at start
(its CRD absent then) is read from the API server, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.constants import LABEL_ISVC, LABEL_MANAGED_BY, MANAGED_BY
from kserve_stack_controller.kube import KINDS, Kube

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

#: The cache key of the cluster scope (ClusterServingRuntimes).
CLUSTER = "\x00cluster"


class RuntimeCache:
    def __init__(self, kube: Kube, parse: Callable[[list[dict[str, Any]], type[Any]], list[Any]]):
        self.kube = kube
        self._parse = parse
        self._lock = threading.Lock()
        self._entries: dict[str, list[Any]] = {}
        self._versions: dict[str, int] = {}

    def namespace_runtimes(self, namespace: str | None) -> list[ServingRuntime]:
        return self._get(namespace or "", lambda: self._list("ServingRuntime", namespace))

    def cluster_runtimes(self) -> list[ClusterServingRuntime]:
        return self._get(CLUSTER, lambda: self._list("ClusterServingRuntime", None))

    def invalidate(self, namespace: str | None) -> None:
        """Forget the runtimes of ``namespace`` (None: the ClusterServingRuntimes)."""
        key = CLUSTER if namespace is None else namespace
        with self._lock:
            self._entries.pop(key, None)
            self._versions[key] = self._versions.get(key, 0) + 1

    def _list(self, kind: str, namespace: str | None) -> list[Any]:
        items = self.kube.list(kind, namespace)
        model = ServingRuntime if kind == "ServingRuntime" else ClusterServingRuntime
        return self._parse(items, model)

    def _get(self, key: str, load: Callable[[], list[Any]]) -> list[Any]:
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            version = self._versions.get(key, 0)
        loaded = load()
        with self._lock:
            if self._versions.get(key, 0) == version:
                self._entries[key] = loaded
        return loaded


#: The children of an InferenceService (each carries the label LABEL_ISVC) whose reads the
#: cache serves, and the kind of the InferenceService itself.
CHILD_KINDS = (
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "HTTPRoute",
    "Ingress",
)
ISVC_KIND = "InferenceService"
CACHED_KINDS = (*CHILD_KINDS, ISVC_KIND)
#: The label selector of the children kopf watches (and the cache holds).
CHILD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_ISVC}"
#: Objects per page of the listings at start.
PAGE = 250
#: How long a deleted object's version is kept, so that an older event of it arriving late
#: (kopf queues each object's events behind its running handler) does not bring it back.
TOMBSTONE_SECONDS = 600.0


def _version(obj: Mapping[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _newer(new: int | None, old: int | None) -> bool:
    # resourceVersions are etcd revisions (comparable, KEP-5504); should one not be a
    # number, the later arrival wins.
    return new is None or old is None or new > old


@dataclass(slots=True)
class _Entry:
    version: int | None
    group: str | None  # the LABEL_ISVC value of a child; "" for an InferenceService
    labels: dict[str, str]
    text: bytes | None  # the object as JSON; None once deleted
    deleted_at: float = 0.0


class ObjectCache:
    """The latest version of each watched object, by (kind, namespace, name). An object is
    kept as JSON (without ``managedFields``) and decoded on each read, so readers get their
    own copy and 1,000 objects cost little memory. Versions only move forward: an older
    version (a late event, a write's answer overtaken by a watch event) is ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._groups: dict[tuple[str, str, str], set[str]] = {}
        self._tombstones = 0
        self.primed: set[str] = set()

    def offer(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """Keep ``obj`` unless a newer version is known; True when kept."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name")
        if kind not in CACHED_KINDS or not name:
            return False
        labels = dict(meta.get("labels") or {})
        group = "" if kind == ISVC_KIND else labels.get(LABEL_ISVC)
        slim = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        slim.setdefault("kind", kind)
        text = orjson.dumps(slim)
        version = _version(obj)
        key = (kind, namespace, name)
        with self._lock:
            old = self._entries.get(key)
            if old is not None and not _newer(version, old.version):
                return False
            if old is not None and old.text is not None and old.group != group:
                self._ungroup(kind, namespace, old.group, name)
            if old is not None and old.text is None:
                self._tombstones -= 1
            self._entries[key] = _Entry(version, group, labels, text)
            if group is not None:
                self._groups.setdefault((kind, namespace, group), set()).add(name)
        return True

    def remove(self, kind: str, obj: Mapping[str, Any]) -> None:
        """``obj`` is deleted (its last version, as the DELETED event or the delete gave it)."""
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", str(meta.get("name")))
        version = _version(obj)
        now = time.monotonic()
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.text is None:
                if _newer(version, old.version):
                    old.version, old.deleted_at = version, now
                return
            if old is not None and (version is None or not _newer(version, old.version)):
                version = old.version  # our own delete knows no newer version
            if old is not None:
                self._ungroup(kind, key[1], old.group, key[2])
            self._entries[key] = _Entry(version, None, {}, None, now)
            self._tombstones += 1
            if self._tombstones > 1000:
                self._purge(now)

    def drop_unlisted(
        self,
        kind: str,
        namespace: str | None,
        listed: Collection[tuple[str, str]],
        version: str | None,
    ) -> list[JsonDict]:
        """Forget the objects of ``kind`` in ``namespace`` (None: every namespace) that a
        complete listing at resourceVersion ``version`` did not hold (``listed``: their
        (namespace, name)): they were deleted while no watch said so. Objects newer than
        the listing (written after it) stay. Returns the objects forgotten."""
        listing = int(version) if version and version.isdigit() else None
        if listing is None:
            return []
        names = set(listed)
        with self._lock:
            gone = [
                (key, entry.text)
                for key, entry in self._entries.items()
                if key[0] == kind
                and (namespace is None or key[1] == namespace)
                and entry.text is not None
                and (key[1], key[2]) not in names
                and entry.version is not None
                and entry.version <= listing
            ]
        objects = [orjson.loads(text) for _, text in gone if text is not None]
        for obj in objects:
            self.remove(kind, obj)
        return objects

    def get(self, kind: str, namespace: str | None, name: str) -> JsonDict | None:
        with self._lock:
            entry = self._entries.get((kind, namespace or "", name))
            text = entry.text if entry is not None else None
        return orjson.loads(text) if text is not None else None

    def select(
        self, kind: str, namespace: str | None, group: str | None, labels: Mapping[str, str]
    ) -> list[JsonDict]:
        """Objects of ``kind`` in ``namespace`` (None: every namespace) whose group (the
        LABEL_ISVC value; None: any) and labels match."""
        with self._lock:
            if group is not None and namespace is not None:
                keys = [
                    (kind, namespace, n) for n in self._groups.get((kind, namespace, group), ())
                ]
            else:
                keys = [
                    k
                    for k in self._entries
                    if k[0] == kind and (namespace is None or k[1] == namespace)
                ]
            found = []
            for key in keys:
                entry = self._entries[key]
                if entry.text is None or (group is not None and entry.group != group):
                    continue
                if all(entry.labels.get(k) == v for k, v in labels.items()):
                    found.append((key, entry.text))
        return [orjson.loads(text) for _, text in sorted(found)]

    def _ungroup(self, kind: str, namespace: str, group: str | None, name: str) -> None:
        members = self._groups.get((kind, namespace, group or ""))
        if group is not None and members is not None:
            members.discard(name)
            if not members:
                del self._groups[(kind, namespace, group)]

    def _purge(self, now: float) -> None:
        old = [
            key
            for key, entry in self._entries.items()
            if entry.text is None and now - entry.deleted_at > TOMBSTONE_SECONDS
        ]
        for key in old:
            del self._entries[key]
        self._tombstones -= len(old)


#: Tries of one listing at start when the API server answers 429, 5xx or not at all, and
#: the first pause between them (doubled each time).
PRIME_TRIES = 5
PRIME_BACKOFF = 0.5


def prime(
    kube: Kube, cache: ObjectCache, namespaces: list[str], backoff: float = PRIME_BACKOFF
) -> None:
    """List every cached kind once (in ``namespaces``; none: the whole cluster) before kopf
    starts, so that the cache holds every object that exists by then; kopf's watches, which
    start after, bring every later change. A kind the API server does not serve (404: its
    CRD absent) or does not let us list (403) is left out, and read from the API server.
    A listing whose continue token expired (410) starts again; one the API server answers
    429 or 5xx, or not at all, is tried again after a pause (PRIME_TRIES in all)."""
    scopes: list[str | None] = [*namespaces] if namespaces else [None]
    for kind in CACHED_KINDS:
        try:
            for namespace in scopes:
                _list_into(kube, cache, kind, namespace, backoff)
        except ApiException as err:
            if err.status not in (403, 404):
                raise
            continue  # read from the API server, as before (kopf cannot watch it either)
        cache.primed.add(kind)


def _list_into(
    kube: Kube, cache: ObjectCache, kind: str, namespace: str | None, backoff: float
) -> None:
    selector = None if kind == ISVC_KIND else CHILD_SELECTOR
    for attempt in range(PRIME_TRIES):
        params: dict[str, Any] = {"label_selector": selector, "limit": PAGE}
        try:
            while True:
                page = kube.request("get", KINDS[kind].path(namespace), **params)
                for item in page.get("items") or []:
                    cache.offer(kind, item)
                params["_continue"] = (page.get("metadata") or {}).get("continue")
                if not params["_continue"]:
                    return
        except ApiException as err:
            if err.status == 410:  # the continue token expired: list again from the start
                continue
            if (err.status != 429 and err.status < 500) or attempt == PRIME_TRIES - 1:
                raise
            reason = f"{err.status} {err.reason}"
        except urllib3.exceptions.HTTPError as err:
            if attempt == PRIME_TRIES - 1:
                raise
            reason = type(err).__name__
        pause = backoff * 2**attempt
        log.warning("listing %s failed (%s); trying again in %.1f s", kind, reason, pause)
        time.sleep(pause)
    raise ApiException(status=410, reason=f"listing {kind} kept expiring")


def equality_selector(selector: str | None) -> dict[str, str] | None:
    """``a=b,c==d`` as a dict; None for any other form (``!=``, ``in``, existence)."""
    terms: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        key, sep, value = term.partition("=")
        if not sep or not key.strip() or key.endswith("!"):
            return None
        terms[key.strip()] = value.removeprefix("=").strip()
    return terms


class CachedKube(Kube):
    """A ``Kube`` whose ``get`` and ``list`` of the cached kinds, in the namespaces the
    operator watches, come from an ``ObjectCache`` (the kinds ``prime`` listed); every
    other request goes through ``inner`` (its connection pool), and what a write answers is
    kept."""

    def __init__(
        self, inner: Kube, cache: ObjectCache, in_scope: Callable[[str | None], bool]
    ) -> None:
        # No Kube.__init__: the inner client's discovery and pool serve both.
        self.api_client = inner.api_client
        self.inner = inner
        self.cache = cache
        self.in_scope = in_scope

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> JsonDict:
        return self.inner.request(method, path, body, **params)

    def get(self, kind: str, name: str, namespace: str | None = None) -> JsonDict | None:
        if kind in self.cache.primed and namespace and self.in_scope(namespace):
            return self.cache.get(kind, namespace, name)
        return super().get(kind, name, namespace)

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[JsonDict]:
        labels = equality_selector(label_selector)
        if kind in self.cache.primed and labels is not None and self.in_scope(namespace):
            if kind == ISVC_KIND:
                return self.cache.select(kind, namespace, "" if namespace else None, labels)
            group = labels.pop(LABEL_ISVC, None)
            if group is not None and namespace:
                return self.cache.select(kind, namespace, group, labels)
        return super().list(kind, namespace, label_selector)

    def apply(self, obj: JsonDict, field_manager: str, force: bool = True) -> JsonDict:
        live = super().apply(obj, field_manager, force)
        self.cache.offer(obj["kind"], live)
        return live

    def merge_patch(
        self, kind: str, name: str, namespace: str | None, body: JsonDict, field_manager: str
    ) -> JsonDict:
        live = super().merge_patch(kind, name, namespace, body, field_manager)
        self.cache.offer(kind, live)
        return live

    def patch_status(
        self, kind: str, name: str, namespace: str | None, status: JsonDict
    ) -> JsonDict:
        live = super().patch_status(kind, name, namespace, status)
        self.cache.offer(kind, live)
        return live

    def delete(
        self, kind: str, name: str, namespace: str | None = None, propagation: str = "Background"
    ) -> bool:
        gone = super().delete(kind, name, namespace, propagation)
        self.cache.remove(kind, {"metadata": {"namespace": namespace, "name": name}})
        return gone
