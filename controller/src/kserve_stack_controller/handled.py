"""What kopf remembers of each InferenceService it handled, kept in the operator's memory.

kopf tells a change that needs its update handler from one that does not (a status write, a
resourceVersion bump) by comparing the object's "essence" (spec, labels, annotations) with
the essence it last handled. Its stock storage writes that essence into an annotation of the
object after every handled change: one more PATCH per create and update, one more watch event
to process, and a deep copy of the whole object (managedFields, status) for every event.

Here the essence lives in memory, as compact JSON by uid. After a restart nothing is
remembered, so kopf sees every object as new and runs the create handler, which is the same
reconcile as the resume handler it would otherwise run: nothing is lost, nothing is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, cast

import kopf
import orjson

#: Annotations that are no part of what the user asked for: kopf's own (progress, the
#: essence older versions of this controller wrote) and kubectl's copy of the manifest.
_IGNORED_ANNOTATION_PREFIXES = ("kopf.zalando.org/",)
_IGNORED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})


class MemoryDiffBaseStorage(kopf.DiffBaseStorage):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._essences: dict[str, bytes] = {}

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        # Only what is kept is copied (kopf's stock build deep-copies the whole body first).
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)
        essence: dict[str, Any] = {}
        for key, value in body.items():
            if key not in ("apiVersion", "kind", "metadata", "status") and value is not None:
                essence[key] = value
        meta = body.get("metadata") or {}
        labels = dict(meta.get("labels") or {})
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in _IGNORED_ANNOTATIONS and not k.startswith(_IGNORED_ANNOTATION_PREFIXES)
        }
        metadata = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v}
        if metadata:
            essence["metadata"] = metadata
        # A JSON round trip is the copy: later changes of the body do not reach it.
        return cast(kopf.BodyEssence, orjson.loads(orjson.dumps(essence)))

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        with self._lock:
            text = self._essences.get(body.metadata.uid or "")
        return cast(kopf.BodyEssence, orjson.loads(text)) if text is not None else None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        text = orjson.dumps(essence, option=orjson.OPT_SORT_KEYS)
        with self._lock:
            self._essences[body.metadata.uid or ""] = text

    def forget(self, uid: str) -> None:
        """The object is gone: drop its essence."""
        with self._lock:
            self._essences.pop(uid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._essences)
