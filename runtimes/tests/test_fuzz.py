"""Fuzzing: schemathesis against the published OpenAPI spec, hypothesis against the parsers."""

from __future__ import annotations

import contextlib
import json
import struct

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol import v1, v2
from runtimes_support import SAMPLE, ServerProcess


@pytest.mark.data_plane
def test_openapi_fuzz_never_5xx(sklearn_server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{sklearn_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    seen_statuses: set[int] = set()
    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), real_model=st.booleans())
        def fuzz(case: schemathesis.Case, real_model: bool) -> None:
            # Half the cases address the served model, so bodies reach the decoders.
            if real_model and case.path_parameters and "/repository/" not in case.path:
                case.path_parameters["name"] = "iris"
            response = case.call(base_url=sklearn_server.url, timeout=10)
            seen_statuses.add(response.status_code)
            if case.path.endswith(":explain") and response.status_code == 501:
                # The one deliberate 5xx: this model has no explainer (501 Not Implemented).
                assert "explain" in response.json()["error"]
                return
            assert response.status_code < 500, (case.path, case.body, response.text)
            if response.status_code >= 400:
                assert "error" in response.json()

        fuzz()
    assert {200, 400} <= seen_statuses
    # still serving, and the model still answers
    httpx.post(f"{sklearn_server.url}/v2/repository/models/iris/load")
    r = httpx.post(f"{sklearn_server.url}/v1/models/iris:predict", json={"instances": SAMPLE})
    assert r.status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
tensor_like = st.fixed_dictionaries(
    {
        "name": st.text(max_size=4) | st.integers(),
        "datatype": st.sampled_from([*v2.DATATYPES, "FP8", 1]),
        "shape": st.lists(st.integers(-2, 4), max_size=3) | json_values,
        "data": json_values,
    },
    optional={
        "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), json_values)
    },
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    doc=st.fixed_dictionaries(
        {"inputs": st.lists(tensor_like, max_size=3) | json_values},
        optional={"outputs": json_values, "id": json_values, "parameters": json_values},
    ),
    tail=st.binary(max_size=32),
    header_delta=st.none() | st.integers(-40, 40),
)
def test_v2_parser_raises_only_invalid_input(
    doc: object, tail: bytes, header_delta: int | None
) -> None:
    body = json.dumps(doc).encode()
    header = None if header_delta is None else len(body) + header_delta
    try:
        request = v2.decode_request(body + tail, "m", header_length=header)
    except InvalidInputError:
        return
    for tensor in request.inputs:
        assert list(tensor.data.shape) == tensor.shape


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parsers_on_arbitrary_bytes(body: bytes) -> None:
    for parse in (lambda b: v2.decode_request(b, "m"), v1.decode_request):
        with contextlib.suppress(InvalidInputError):
            parse(body)


@settings(max_examples=300, deadline=None, database=None)
@given(
    items=st.lists(st.binary(max_size=8), max_size=5),
    garbage=st.binary(max_size=6),
    count=st.integers(0, 6),
)
def test_binary_bytes_tensor_parser(items: list[bytes], garbage: bytes, count: int) -> None:
    raw = b"".join(struct.pack("<I", len(i)) + i for i in items)
    decoded = v2.decode_raw(raw, "BYTES", [len(items)], "x")
    assert decoded.tolist() == items
    with contextlib.suppress(InvalidInputError):
        v2.decode_raw(raw + garbage, "BYTES", [count], "x")
