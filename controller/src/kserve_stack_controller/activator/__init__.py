"""``kserve-stack-activator``: scale from zero holds the first request until a replica is ready.

The HTTPRoute of a component that scales to zero sends its traffic here, naming the
component's Service in ``x-kserve-stack-target: NAMESPACE/SERVICE``. The activator watches
the EndpointSlices of those Services: with a ready endpoint it forwards at once (to the pod
endpoint, round-robin); with none it counts the request in
``kserve_stack_activator_pending_requests{namespace,service}`` (the ScaledObject's
activation trigger reads it, so KEDA scales the Deployment up; ``--wake scale`` also patches
the Deployment's scale 0 -> 1 itself), holds it until an endpoint turns ready, then
forwards it, or answers 504 after the hold timeout.

Modules: ``endpoints`` (the EndpointSlice watch and the waiters), ``proxy`` (the aiohttp
application: target, hold, forward), ``wake`` (scaling 0 -> 1), ``metrics``, ``logs``,
``__main__`` (flags, settings, servers).
"""
