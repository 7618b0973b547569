"""Kubernetes Events about InferenceServices, posted from one background thread in the
order they were recorded (as client-go's event broadcaster does): a reconcile does not wait
for them, and they do not compete with its writes of children and status. Events are best
effort: one that cannot be posted is logged (debug) and dropped, never retried."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.constants import MANAGED_BY
from kserve_stack_controller.kube import Kube

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

#: Longer messages are cut (the API server's own limit for an event's note is 1 KiB).
MESSAGE_LIMIT = 1000
#: Events waiting to be posted; past it, new ones are dropped (an API server away for long).
QUEUE_LIMIT = 10_000


def event_for(body: Mapping[str, Any], event_type: str, reason: str, message: str) -> JsonDict:
    meta = body["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta["uid"],
        },
        "type": event_type,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": MANAGED_BY},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._queue: queue.Queue[JsonDict] = queue.Queue(QUEUE_LIMIT)
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queue an event (stamped now) about ``body``."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._post_all, name="events", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(event_for(body, event_type, reason, message))
        except queue.Full:
            log.debug("event queue full: dropped event %s", reason)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event is posted (or dropped); False after ``timeout``."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, name="events-flush", daemon=True).start()
        return done.wait(timeout)

    def _post_all(self) -> None:
        while True:
            event = self._queue.get()
            namespace = event["metadata"]["namespace"]
            try:
                self.kube.request("post", f"/api/v1/namespaces/{namespace}/events", body=event)
            except (ApiException, urllib3.exceptions.HTTPError) as err:
                log.debug(
                    "could not post event %s: %s",
                    event["reason"],
                    getattr(err, "reason", None) or type(err).__name__,
                )
            finally:
                self._queue.task_done()
