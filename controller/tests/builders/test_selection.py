"""Runtime selection: explicit names, auto-selection, priority, protocol, disabled, scope."""

from __future__ import annotations

import pytest
from controller_factories import cluster_runtime, serving_runtime
from kserve_stack_api.inferenceservice import ModelFormat
from kserve_stack_controller.builders.selection import select_runtime
from kserve_stack_controller.errors import (
    NoSupportingRuntimeError,
    RuntimeDisabledError,
    RuntimeNotFoundError,
    RuntimeUnsupportedError,
)

SK = {"name": "sklearn", "autoSelect": True}
SK1 = {"name": "sklearn", "version": "1", "autoSelect": True}

CASES = [
    # id, model format, protocol, namespace runtimes, cluster runtimes, requested, expected
    ("namespace-first", ("sklearn", None), "v1",
     [serving_runtime("ns-sk", [SK])], [cluster_runtime("cl-sk", [SK])], None, "ns-sk"),
    ("cluster-when-no-namespace", ("sklearn", None), "v1",
     [], [cluster_runtime("cl-sk", [SK])], None, "cl-sk"),
    ("priority-beats-scope", ("sklearn", None), "v1",
     [serving_runtime("ns-sk", [{**SK, "priority": 1}])],
     [cluster_runtime("cl-sk", [{**SK, "priority": 5}])], None, "cl-sk"),
    ("priority-beats-none", ("sklearn", None), "v1",
     [serving_runtime("a", [SK]), serving_runtime("b", [{**SK, "priority": 1}])], [], None, "b"),
    ("name-orders-ties", ("sklearn", None), "v1",
     [serving_runtime("a", [SK]), serving_runtime("b", [SK])], [], None, "a"),
    ("format-case-insensitive", ("SKLearn", None), "v1",
     [serving_runtime("a", [SK])], [], None, "a"),
    ("version-major-matches", ("sklearn", "1.5"), "v1",
     [serving_runtime("v0", [{**SK, "version": "0"}]), serving_runtime("v1", [SK1])], [], None,
     "v1"),
    ("no-version-matches-any", ("sklearn", None), "v1", [serving_runtime("v1", [SK1])], [], None,
     "v1"),
    ("skips-disabled", ("sklearn", None), "v1",
     [serving_runtime("off", [SK], disabled=True), serving_runtime("on", [SK])], [], None, "on"),
    ("skips-multi-model", ("sklearn", None), "v1",
     [serving_runtime("mm", [SK], multiModel=True)], [cluster_runtime("single", [SK])], None,
     "single"),
    ("skips-not-auto-select", ("sklearn", None), "v1",
     [serving_runtime("manual", [{"name": "sklearn"}]), serving_runtime("auto", [SK])], [], None,
     "auto"),
    ("protocol-v2", ("sklearn", None), "v2",
     [serving_runtime("v1only", [SK], protocolVersions=["v1"]),
      serving_runtime("both", [SK], protocolVersions=["v1", "v2"])], [], None, "both"),
    ("explicit-not-auto-select", ("sklearn", None), "v1",
     [serving_runtime("manual", [{"name": "sklearn"}])], [], "manual", "manual"),
    ("explicit-namespace-shadows-cluster", ("sklearn", None), "v1",
     [serving_runtime("same", [SK])], [cluster_runtime("same", [SK])], "same", "same"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "protocol", "ns", "cl", "requested", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_selects(fmt, protocol, ns, cl, requested, expected) -> None:  # type: ignore[no-untyped-def]  # noqa: PLR0917
    chosen = select_runtime(ModelFormat(name=fmt[0], version=fmt[1]), protocol, ns, cl, requested)
    assert chosen.name == expected


def test_namespace_runtime_is_not_cluster_scoped() -> None:
    chosen = select_runtime(ModelFormat(name="sklearn"), "v1", [serving_runtime("a", [SK])], [])
    assert not chosen.cluster_scoped and chosen.kind == "ServingRuntime"


ERRORS = [
    ("none-at-all", ("xgboost", None), "v1", [serving_runtime("a", [SK])], None,
     NoSupportingRuntimeError, "model type xgboost"),
    ("wrong-version", ("sklearn", "2"), "v1", [serving_runtime("a", [SK1])], None,
     NoSupportingRuntimeError, "version 2"),
    ("wrong-protocol", ("sklearn", None), "grpc-v2", [serving_runtime("a", [SK])], None,
     NoSupportingRuntimeError, "protocol version grpc-v2"),
    ("only-disabled", ("sklearn", None), "v1", [serving_runtime("a", [SK], disabled=True)], None,
     NoSupportingRuntimeError, "NoSupporting"),
    ("named-missing", ("sklearn", None), "v1", [], "ghost", RuntimeNotFoundError, "'ghost'"),
    ("named-disabled", ("sklearn", None), "v1", [serving_runtime("a", [SK], disabled=True)], "a",
     RuntimeDisabledError, "disabled"),
    ("named-wrong-format", ("xgboost", None), "v1", [serving_runtime("a", [SK])], "a",
     RuntimeUnsupportedError, "does not support model format xgboost"),
    ("named-wrong-protocol", ("sklearn", None), "v2", [serving_runtime("a", [SK])], "a",
     RuntimeUnsupportedError, "does not speak protocol v2"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "protocol", "ns", "requested", "error", "text"),
    [c[1:] for c in ERRORS],
    ids=[c[0] for c in ERRORS],
)
def test_refuses(fmt, protocol, ns, requested, error, text) -> None:  # type: ignore[no-untyped-def]  # noqa: PLR0917
    with pytest.raises(error) as raised:
        select_runtime(ModelFormat(name=fmt[0], version=fmt[1]), protocol, ns, [], requested)
    if text == "NoSupporting":
        assert raised.value.reason == "NoSupportingRuntime"
    else:
        assert text in raised.value.message
