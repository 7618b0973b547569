"""Helpers of the kserve-stack e2e suite: cluster backends, a small Kubernetes
helper with waits and failure dumps, and throw-away TLS material for webhooks.

conftest.py puts this folder on sys.path, so tests import ``kss_e2e`` directly.
"""

from kss_e2e.backend import Cluster, select_cluster
from kss_e2e.kube import Kube, WaitTimeoutError, wait_for
from kss_e2e.tls import TLSFiles, make_tls

__all__ = [
    "Cluster",
    "Kube",
    "TLSFiles",
    "WaitTimeoutError",
    "make_tls",
    "select_cluster",
    "wait_for",
]
