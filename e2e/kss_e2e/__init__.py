"""Helpers of the kserve-stack e2e suite: cluster backends, a small Kubernetes
helper with waits and failure dumps, throw-away TLS material for webhooks, and free ports
and readiness probes for the processes the tests start.

conftest.py puts this folder on sys.path, so tests import ``kss_e2e`` directly.
"""

from kss_e2e.backend import Cluster, select_cluster
from kss_e2e.kube import Kube, WaitTimeoutError, wait_for
from kss_e2e.processes import answers, free_ports
from kss_e2e.tls import TLSFiles, make_tls

__all__ = [
    "Cluster",
    "Kube",
    "TLSFiles",
    "WaitTimeoutError",
    "answers",
    "free_ports",
    "make_tls",
    "select_cluster",
    "wait_for",
]
