"""Ready endpoints of each Service, from a list + watch of EndpointSlices.

The watch runs in a thread with the official (synchronous) client and hands every change to
the event loop, where ``Endpoints`` keeps the ready endpoints per ``(namespace, service)``
and wakes the requests that wait for them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("kserve_stack_controller.activator.endpoints")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
Key = tuple[str, str]  # (namespace, service)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SliceState:
    """What one EndpointSlice says about its Service."""

    namespace: str
    name: str
    service: str | None
    ready: tuple[Endpoint, ...]


def slice_state(obj: Any, port_name: str) -> SliceState:
    """The ready endpoints of a V1EndpointSlice on the port named ``port_name`` (or its only
    port). A ready condition that is absent counts as ready, as the API documents."""
    meta = obj.metadata
    service = (meta.labels or {}).get(SERVICE_NAME_LABEL)
    ports = [p for p in obj.ports or [] if p.port]
    chosen = [p for p in ports if p.name == port_name] or (ports if len(ports) == 1 else [])
    ready: list[Endpoint] = []
    if chosen:
        port = int(chosen[0].port)
        for endpoint in obj.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            ready.extend(Endpoint(address, port) for address in endpoint.addresses or [])
    return SliceState(meta.namespace, meta.name, service, tuple(ready))


class Endpoints:
    """Ready endpoints by Service; lives on the event loop."""

    def __init__(self) -> None:
        self._slices: dict[Key, dict[str, tuple[Endpoint, ...]]] = {}
        self._waiters: dict[Key, asyncio.Event] = {}
        self._turns: dict[Key, itertools.count[int]] = {}
        self.synced: set[str] = set()  # scopes ("" = every namespace) listed at least once

    def known(self, key: Key) -> bool:
        """Whether the Service has an EndpointSlice (even one without endpoints)."""
        return key in self._slices

    def ready(self, key: Key) -> list[Endpoint]:
        found = {e for endpoints in self._slices.get(key, {}).values() for e in endpoints}
        return sorted(found, key=str)

    def pick(self, key: Key) -> Endpoint | None:
        """The next ready endpoint, round-robin."""
        ready = self.ready(key)
        if not ready:
            return None
        turn = next(self._turns.setdefault(key, itertools.count()))
        return ready[turn % len(ready)]

    async def wait_ready(self, key: Key, timeout: float) -> Endpoint | None:
        """An endpoint as soon as the Service has one, or None after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (endpoint := self.pick(key)) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            event = self._waiters.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return None
        return endpoint

    # --------------------------------------------------------- updates (event loop only)

    def _changed(self, key: Key) -> None:
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    def upsert(self, state: SliceState) -> None:
        if state.service is None:
            return
        key = (state.namespace, state.service)
        before = self.ready(key)
        self._slices.setdefault(key, {})[state.name] = state.ready
        after = self.ready(key)
        if before != after:
            log.info(
                "endpoints of %s/%s: %d ready",
                *key,
                len(after),
                extra={"namespace": key[0], "service": key[1], "ready": [str(e) for e in after]},
            )
        self._changed(key)

    def delete(self, state: SliceState) -> None:
        if state.service is None:
            return
        key = (state.namespace, state.service)
        slices = self._slices.get(key, {})
        slices.pop(state.name, None)
        if not slices:
            self._slices.pop(key, None)
        self._changed(key)

    def replace(self, scope: str, states: Iterable[SliceState]) -> None:
        """A fresh list of the scope (a namespace, or "" for all): forget what it lacks."""
        for key in [k for k in self._slices if not scope or k[0] == scope]:
            del self._slices[key]
        for state in states:
            if state.service is not None:
                key = (state.namespace, state.service)
                self._slices.setdefault(key, {})[state.name] = state.ready
        for key in list(self._waiters):
            if not scope or key[0] == scope:
                self._changed(key)
        self.synced.add(scope)


class SliceWatcher(threading.Thread):
    """List + watch the EndpointSlices of one scope; relists after a 410 or an error."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str | None,
        selector: str,
        port_name: str,
        endpoints: Endpoints,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(name=f"endpointslices-{namespace or 'all'}", daemon=True)
        self.api = client.DiscoveryV1Api(api_client)
        self.namespace = namespace
        self.selector = selector
        self.port_name = port_name
        self.endpoints = endpoints
        self.loop = loop
        self._stop_event = threading.Event()
        self._watch: watch.Watch | None = None

    def stop(self) -> None:
        self._stop_event.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def _list(self, **kwargs: Any) -> Any:
        if self.namespace:
            return self.api.list_namespaced_endpoint_slice(self.namespace, **kwargs)
        return self.api.list_endpoint_slice_for_all_namespaces(**kwargs)

    def run(self) -> None:
        scope = self.namespace or ""
        backoff = 0.5
        while not self._stop_event.is_set():
            try:
                listed = self._list(label_selector=self.selector)
                states = [slice_state(item, self.port_name) for item in listed.items]
                self._call(self.endpoints.replace, scope, states)
                log.info(
                    "listed %d EndpointSlices in %s",
                    len(states),
                    self.namespace or "every namespace",
                    extra={"selector": self.selector},
                )
                version = listed.metadata.resource_version
                backoff = 0.5
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self._list,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=300,
                ):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        break
                    state = slice_state(obj, self.port_name)
                    if event["type"] == "DELETED":
                        self._call(self.endpoints.delete, state)
                    else:
                        self._call(self.endpoints.upsert, state)
            except ApiException as err:
                if err.status != 410:
                    log.warning("EndpointSlice watch failed: %s %s", err.status, err.reason)
                    self._stop_event.wait(backoff)
                    backoff = min(backoff * 2, 10)
            except Exception as err:  # the API server restarts, the network drops: relist
                log.warning("EndpointSlice watch failed: %r; relisting", err)
                self._stop_event.wait(backoff)
                backoff = min(backoff * 2, 10)


class ServiceDirectory:
    """Whether a Service exists (a GET, remembered briefly): tells an unknown target from a
    Service whose EndpointSlice has not been seen yet."""

    def __init__(self, api_client: client.ApiClient, ttl: float = 5.0) -> None:
        self.core = client.CoreV1Api(api_client)
        self.ttl = ttl
        self._seen: dict[Key, tuple[float, bool]] = {}

    async def exists(self, key: Key) -> bool:
        loop = asyncio.get_running_loop()
        cached = self._seen.get(key)
        if cached is not None and loop.time() - cached[0] < self.ttl:
            return cached[1]
        found = await asyncio.to_thread(self._get, key)
        self._seen[key] = (loop.time(), found)
        return found

    def _get(self, key: Key) -> bool:
        try:
            self.core.read_namespaced_service(key[1], key[0])
        except ApiException as err:
            if err.status == 404:
                return False
            # Cannot tell (RBAC, API server down): hold the request rather than refuse it.
            log.warning("cannot read Service %s/%s: %s %s", *key, err.status, err.reason)
        return True
