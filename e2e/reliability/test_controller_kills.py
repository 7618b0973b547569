"""SIGKILL the controller at random points, 20 times, while 200 InferenceServices are being
created, updated, deleted and re-created; after the last restart it converges: every live
InferenceService Ready with exactly one Deployment, Service, HPA and HTTPRoute of its own,
its latest spec applied, and no child left whose owner is gone."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from kss_e2e import Kube, wait_for
from rel_support import (
    CHILD_KINDS,
    ISVC,
    LABEL_ISVC,
    ControllerProcess,
    isvc_manifest,
    list_items,
    ready,
)

pytestmark = [pytest.mark.control_plane, pytest.mark.slow]

COUNT = 200
KILLS = 20
UPDATED_URI = "gs://kfserving-examples/models/sklearn/2.0/model"


def operations(rng: random.Random) -> list[tuple[str, int]]:
    """A mixed stream: every object created; each one's update 20 creates later; every
    third deleted 40 creates later, and a tenth of those re-created (a new uid, same name)."""
    ops: list[tuple[str, int]] = []
    deleted: list[int] = []
    for i in range(COUNT + 40):
        if i < COUNT:
            ops.append(("create", i))
        if 20 <= i < COUNT + 20:
            ops.append(("update", i - 20))
        j = i - 40
        if 0 <= j < COUNT and j % 3 == 0:
            ops.append(("delete", j))
            deleted.append(j)
    for j in rng.sample(deleted, len(deleted) // 10):
        ops.append(("recreate", j))
    return ops


class Driver(threading.Thread):
    """Applies the operations against the API server; records what must exist at the end."""

    def __init__(self, kube: Kube, namespace: str, ops: list[tuple[str, int]]) -> None:
        super().__init__(name="isvc-driver", daemon=True)
        self.kube, self.namespace, self.ops = kube, namespace, ops
        self.expected: dict[str, str] = {}  # live name -> storageUri it must end with
        self.error: BaseException | None = None
        self.res = kube.resource(*ISVC)

    def run(self) -> None:
        try:
            for op, i in self.ops:
                name = f"k-{i:03d}"
                if op in ("create", "recreate"):
                    self.res.create(body=isvc_manifest(name), namespace=self.namespace)
                    self.expected[name] = "1.0"
                elif op == "update":
                    patch = {"spec": {"predictor": {"model": {"storageUri": UPDATED_URI}}}}
                    self.res.patch(name=name, namespace=self.namespace, body=patch,
                                   content_type="application/merge-patch+json")  # fmt: skip
                    self.expected[name] = "2.0"
                else:
                    self.res.delete(name=name, namespace=self.namespace)
                    self.expected.pop(name)
                time.sleep(0.05)
        except BaseException as err:  # reported by the test
            self.error = err


@pytest.mark.usefixtures("runtimes")
def test_converges_after_random_kills(kube: Kube, namespace: str,
                                      make_controller: Callable[[], ControllerProcess]
                                      ) -> None:  # fmt: skip
    seed = int(time.time())
    rng = random.Random(seed)
    print(f"random seed {seed}")
    controller = make_controller()
    controller.start()
    driver = Driver(kube, namespace, operations(rng))
    driver.start()
    kill_times = []
    for _ in range(KILLS):
        # A random point: during start-up (before /readyz) as well as in full flight.
        time.sleep(rng.uniform(0.2, 3.0))
        kill_times.append(round(time.monotonic(), 1))
        controller.kill()
        controller.start(wait=rng.random() < 0.5)
    driver.join(timeout=180)
    assert not driver.is_alive(), "the driver did not finish its operations"
    assert driver.error is None, f"an operation failed: {driver.error!r}"
    assert controller.starts == KILLS + 1
    # The last controller converges.
    wait_for("the controller's /readyz", controller.is_ready, timeout=60)
    converged = wait_for("convergence", lambda: _converged(kube, namespace, driver.expected),
                         timeout=180, interval=2)  # fmt: skip
    assert converged
    assert controller.alive()
    log = controller.log_text()
    at = log.find("Traceback")
    assert at < 0, log[max(0, at - 1000) : at + 4000]  # the traceback, not the log's tail


def _converged(kube: Kube, namespace: str, expected: dict[str, str]) -> bool:
    """True when converged; else an AssertionError that says what is not (yet) right."""
    isvcs = {o["metadata"]["name"]: o for o in list_items(kube, *ISVC, namespace)}
    assert set(isvcs) == set(expected), (
        f"InferenceServices: missing {sorted(set(expected) - set(isvcs))}, "
        f"unexpected {sorted(set(isvcs) - set(expected))}"
    )
    not_ready = sorted(n for n, o in isvcs.items() if not ready(o))
    assert not not_ready, f"{len(not_ready)} not Ready (observed generation), e.g. {not_ready[:5]}"
    uids = {o["metadata"]["uid"]: n for n, o in isvcs.items()}
    for api_version, kind in CHILD_KINDS:
        children = list_items(kube, api_version, kind, namespace)
        per_owner: Counter[str] = Counter()
        for child in children:
            meta = child["metadata"]
            owners = [r["uid"] for r in meta.get("ownerReferences") or [] if r.get("controller")]
            assert len(owners) == 1, f"{kind} {meta['name']}: controller owners {owners}"
            assert owners[0] in uids, f"orphan {kind} {meta['name']}: its owner is gone"
            owner = uids[owners[0]]
            assert (meta.get("labels") or {}).get(LABEL_ISVC) == owner, meta
            per_owner[owner] += 1
        dup = sorted(n for n, c in per_owner.items() if c > 1)
        assert not dup, f"more than one {kind} for {dup[:5]}"
        missing = sorted(set(expected) - set(per_owner))
        assert not missing, f"{len(missing)} without a {kind}, e.g. {missing[:5]}"
    for dep in list_items(kube, "apps/v1", "Deployment", namespace):
        owner = dep["metadata"]["labels"][LABEL_ISVC]
        args = dep["spec"]["template"]["spec"]["initContainers"][0]["args"]
        want = expected[owner]
        assert f"/sklearn/{want}/" in args[0], f"{owner}: Deployment has {args[0]}, want {want}"
    return True
