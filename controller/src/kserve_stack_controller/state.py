"""What the running operator shares between its handlers: the Kubernetes client (reading the
watch caches), the current configuration (replaced when the ConfigMap changes) and the
reconciler."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.cache import ISVC_KIND, CachedKube, ObjectCache
from kserve_stack_controller.config import ConfigError, ControllerConfig, from_configmap_data
from kserve_stack_controller.constants import LABEL_ISVC
from kserve_stack_controller.handled import MemoryDiffBaseStorage
from kserve_stack_controller.kube import Kube
from kserve_stack_controller.metrics import Metrics
from kserve_stack_controller.reconcile import Outcome, Reconciler

log = logging.getLogger(__name__)

#: Threads that run the refreshes children's events ask for: few, so that a burst of them
#: (status changes of many Deployments) leaves CPU time to kopf's event loop and handlers.
REFRESH_THREADS = 2
#: Seconds after which an InferenceService whose shared objects (the activator's
#: ReferenceGrant) could not be written is reconciled again: its next event may be far off.
SHARED_RETRY_SECONDS = 30.0


@dataclass
class Settings:
    """The operator's settings, built once from the command line in ``__main__``."""

    namespaces: list[str] = field(default_factory=list)  # empty: every namespace
    config_namespace: str = "kserve"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 9443
    webhook_cert_dir: str | None = None
    webhook_url: str | None = None
    webhook_config_name: str = "kserve-stack-webhook"
    webhook_secret: str | None = None
    webhook_service: str = "kserve-stack-webhook"
    webhook_namespace: str = "kserve"
    install_runtimes: bool = False
    runtime_image: str | None = None
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    log_level: str = "INFO"
    kubeconfig: str | None = None


@dataclass
class _Run:
    """A reconcile of one InferenceService in progress, and whether children's events
    asked for another one meanwhile (``quick`` unless one of them needs a full one)."""

    namespace: str | None
    name: str
    again: bool = False
    quick: bool = True


class Operator:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.cache = ObjectCache()
        self.kube: Kube = CachedKube(kube, self.cache, self.in_scope)
        self.settings = settings
        self.metrics = Metrics()
        self._config = ControllerConfig()
        self._config_lock = threading.Lock()
        self.reconciler = Reconciler(self.kube, self.config)
        #: kopf's memory of what it last handled of each InferenceService (``handled.py``).
        self.handled = MemoryDiffBaseStorage()
        self.started = False
        self._runs_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._refreshes = ThreadPoolExecutor(REFRESH_THREADS, thread_name_prefix="refresh")
        self.shared_retry = SHARED_RETRY_SECONDS
        self._retries: set[str] = set()  # uids with a retry of their shared objects pending

    def config(self) -> ControllerConfig:
        with self._config_lock:
            return self._config

    def load_config(self, data: Mapping[str, str] | None) -> bool:
        """Take a new ConfigMap ``data``; False (and the old config kept) when it is invalid."""
        try:
            parsed = from_configmap_data(data)
        except ConfigError as err:
            log.error("keeping the previous configuration: %s", err)
            return False
        with self._config_lock:
            changed = parsed != self._config
            self._config = parsed
        if changed:
            log.info(
                "configuration %s/inferenceservice-config loaded", self.settings.config_namespace
            )
        return changed

    def reconcile(self, body: Mapping[str, Any], quick: bool = False) -> Outcome:
        """Reconcile ``body`` now (kopf's create / update / resume, a changed runtime or
        configuration); the refreshes asked for meanwhile follow it."""
        self.cache.offer(ISVC_KIND, body)  # a later refresh reads no older version
        meta = body["metadata"]
        with self._runs_lock:
            first = meta["uid"] not in self._runs
            if first:
                self._runs[meta["uid"]] = _Run(meta.get("namespace"), meta["name"])
        try:
            return self._reconcile(body, quick)
        finally:
            if first:
                self._drain(meta["uid"])

    def refresh(self, body: Mapping[str, Any], quick: bool) -> Future[None] | None:
        """Reconcile after a child's event, in one of REFRESH_THREADS threads, of the object
        as the cache has it then; kopf's thread returns at once. Children's events come in
        bursts and while the object is being reconciled: one asked for while the object is
        being reconciled, or while a refresh of it waits, only asks for one more after it."""
        meta = body["metadata"]
        with self._runs_lock:
            run = self._runs.get(meta["uid"])
            if run is not None:
                run.quick = run.quick and quick if run.again else quick
                run.again = True
                return None
            self._runs[meta["uid"]] = _Run(meta.get("namespace"), meta["name"], True, quick)
        return self._refreshes.submit(self._refresh, meta["uid"])

    def _refresh(self, uid: str) -> None:
        try:
            self._drain(uid)
        except Exception:
            log.exception("refresh of InferenceService %s failed", uid)

    def _drain(self, uid: str) -> None:
        """Run the reconciles asked for while one ran, then let the object go."""
        try:
            while True:
                with self._runs_lock:
                    run = self._runs[uid]
                    if not run.again:
                        del self._runs[uid]
                        return
                    run.again = False
                    quick = run.quick
                body = self.kube.get(ISVC_KIND, run.name, run.namespace)
                meta = (body or {}).get("metadata") or {}
                if body is None or meta.get("uid") != uid or meta.get("deletionTimestamp"):
                    continue
                try:
                    self._reconcile(body, quick)
                except (ApiException, urllib3.exceptions.HTTPError) as err:
                    # As for a refresh in kopf's thread: the next event brings it up to date.
                    log.warning(
                        "InferenceService %s/%s: refresh failed: %s",
                        run.namespace,
                        run.name,
                        getattr(err, "reason", None) or type(err).__name__,
                    )
        except BaseException:
            with self._runs_lock:  # never leave a run behind that later events wait for
                self._runs.pop(uid, None)
            raise

    def _asked_again(self, uid: str) -> bool:
        """Whether a child's event asked for another reconcile of ``uid`` meanwhile."""
        with self._runs_lock:
            run = self._runs.get(uid)
            return run is not None and run.again

    def _reconcile(self, body: Mapping[str, Any], quick: bool) -> Outcome:
        started = time.perf_counter()
        uid = body["metadata"]["uid"]
        try:
            outcome = self.reconciler.reconcile(body, quick, lambda: self._asked_again(uid))
        except Exception:
            self.metrics.reconciled("error", time.perf_counter() - started)
            raise
        result = "failed" if outcome.error else "ok"
        self.metrics.reconciled(result, time.perf_counter() - started)
        if outcome.warnings:
            self._retry_later(body)
        return outcome

    def _retry_later(self, body: Mapping[str, Any]) -> None:
        """Reconcile ``body``'s object again in ``shared_retry`` seconds (once per object
        at a time), as it is then."""
        meta = body["metadata"]
        with self._runs_lock:
            if meta["uid"] in self._retries:
                return
            self._retries.add(meta["uid"])
        args = (meta.get("namespace"), meta["name"], meta["uid"])
        timer = threading.Timer(self.shared_retry, self._retry, args)
        timer.daemon = True
        timer.start()

    def _retry(self, namespace: str | None, name: str, uid: str) -> None:
        with self._runs_lock:
            self._retries.discard(uid)
        try:
            body = self.kube.get(ISVC_KIND, name, namespace)
        except (ApiException, urllib3.exceptions.HTTPError) as err:
            log.warning("InferenceService %s/%s: retry not started: %s", namespace, name, err)
            return
        meta = (body or {}).get("metadata") or {}
        if body is not None and meta.get("uid") == uid and not meta.get("deletionTimestamp"):
            log.info("InferenceService %s/%s: writing its shared objects again", namespace, name)
            self.refresh(body, quick=False)

    def forget(self, uid: str) -> None:
        """Drop what is remembered of a deleted InferenceService."""
        self.reconciler.forget(uid)
        self.handled.forget(uid)

    def in_scope(self, namespace: str | None) -> bool:
        return not self.settings.namespaces or namespace in self.settings.namespaces

    def owner_of(self, child: Mapping[str, Any]) -> dict[str, Any] | None:
        """The live InferenceService that owns ``child`` (named by its LABEL_ISVC label, with
        the uid of one of its owner references), if any and in scope; from the cache once
        InferenceServices are cached, else from the API server."""
        meta: Mapping[str, Any] = child.get("metadata") or {}
        namespace = meta.get("namespace")
        owner = (meta.get("labels") or {}).get(LABEL_ISVC)
        if not owner or not self.in_scope(namespace):
            return None
        isvc = self.kube.get(ISVC_KIND, owner, namespace)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return None
        uids = {o.get("uid") for o in meta.get("ownerReferences") or []}
        return isvc if isvc["metadata"]["uid"] in uids else None

    def inference_services(self, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        scopes: list[str | None] = [namespace]
        if namespace is None and self.settings.namespaces:
            scopes = list(self.settings.namespaces)
        for scope in scopes:
            yield from self.kube.list("InferenceService", scope)

    def reconcile_all(self, namespace: str | None = None, why: str = "") -> int:
        count = 0
        for body in self.inference_services(namespace):
            if body["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.reconcile(body)
            except ApiException as err:  # one object's trouble must not starve the others
                meta = body["metadata"]
                log.warning(
                    "InferenceService %s/%s: reconcile failed: API server answered %s %s",
                    meta.get("namespace"),
                    meta["name"],
                    err.status,
                    err.reason,
                )
                continue
            except urllib3.exceptions.HTTPError as err:
                # The API server is away: the rest would fail alike. Its watches' next
                # events (the re-listing after it is back) bring every object up to date.
                log.warning(
                    "re-reconciling InferenceServices%s stopped: API server unreachable (%s)",
                    f" ({why})" if why else "",
                    type(err).__name__,
                )
                break
            count += 1
        if count:
            log.info("re-reconciled %d InferenceServices%s", count, f": {why}" if why else "")
        return count
