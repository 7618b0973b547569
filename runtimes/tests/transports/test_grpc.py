"""gRPC (Open Inference Protocol + health) against a real server, with Triton's official client."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from runtimes_support import SAMPLE, SAMPLE_CLASSES, ServerProcess
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.data_plane


def test_health_service(sklearn_server: ServerProcess) -> None:
    with grpc.insecure_channel(sklearn_server.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_triton_grpc_client_infer(sklearn_server: ServerProcess) -> None:
    client = grpcclient.InferenceServerClient(sklearn_server.grpc_target)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.get_server_metadata().name == "kserve-stack"
    assert client.get_model_metadata("iris").platform == "sklearn"
    x = grpcclient.InferInput("input-0", [2, 4], "FP32")
    x.set_data_from_numpy(np.asarray(SAMPLE, dtype=np.float32))
    result = client.infer("iris", [x], request_id="g-1")
    assert result.as_numpy("output-0").tolist() == SAMPLE_CLASSES
    assert result.get_response().id == "g-1"


@pytest.mark.parametrize(
    ("model", "shape", "code"),
    [("nope", [2, 4], "NOT_FOUND"), ("iris", [2, 3], "INVALID_ARGUMENT")],
    ids=["unknown-model", "wrong-shape"],
)
def test_grpc_errors_map_to_status(
    sklearn_server: ServerProcess, model: str, shape: list[int], code: str
) -> None:
    client = grpcclient.InferenceServerClient(sklearn_server.grpc_target)
    x = grpcclient.InferInput("input-0", shape, "FP32")
    x.set_data_from_numpy(np.ones(shape, dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer(model, [x])
    assert code in str(info.value.status())
    assert client.is_server_live()
