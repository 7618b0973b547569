"""The OpenAPI 3.1 description of the REST transport, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from kserve_stack_runtimes.protocol.v2 import DATATYPES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


_ERRORS = {
    "400": _resp("Malformed request", _ERROR),
    "404": _resp("No such model", _ERROR),
    "413": _resp("Request body too large", _ERROR),
    "503": _resp("Model or server not ready", _ERROR),
}

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _get(summary: str, params: list[dict[str, Any]], ok: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": _resp(ok), **_ERRORS},
        }
    }


def _post(
    summary: str, params: list[dict[str, Any]], body: dict[str, Any] | None, ok: str
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {"200": _resp(ok), **_ERRORS},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return {"post": op}


def openapi_spec() -> dict[str, Any]:
    """The spec as a dict."""
    infer = {"$ref": "#/components/schemas/InferenceRequest"}
    v1_body = {"$ref": "#/components/schemas/V1Request"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kserve-stack model server",
            "version": "1",
            "description": "V1 and V2 (Open Inference Protocol) REST endpoints.",
        },
        "paths": {
            "/": _get("Liveness (V1)", [], "Server alive"),
            "/v1/models": _get("List models", [], "Model names"),
            "/v1/models/{name}": _get("Model readiness (V1)", [_NAME], "Model status"),
            "/v1/models/{name}:predict": _post("Predict (V1)", [_NAME], v1_body, "Predictions"),
            "/v1/models/{name}:explain": _post("Explain (V1)", [_NAME], v1_body, "Explanations"),
            "/v2": _get("Server metadata", [], "Server metadata"),
            "/v2/health/live": _get("Server liveness", [], "Live"),
            "/v2/health/ready": _get("Server readiness", [], "Ready"),
            "/v2/models/{name}": _get("Model metadata", [_NAME], "Model metadata"),
            "/v2/models/{name}/ready": _get("Model readiness", [_NAME], "Ready"),
            "/v2/models/{name}/infer": _post("Inference", [_NAME], infer, "Inference response"),
            "/v2/models/{name}/versions/{version}": _get(
                "Model metadata (version)", [_NAME, _VERSION], "Model metadata"
            ),
            "/v2/models/{name}/versions/{version}/ready": _get(
                "Model readiness (version)", [_NAME, _VERSION], "Ready"
            ),
            "/v2/models/{name}/versions/{version}/infer": _post(
                "Inference (version)", [_NAME, _VERSION], infer, "Inference response"
            ),
            "/v2/repository/index": _post("Repository index", [], None, "Models and states"),
            "/v2/repository/models/{name}/load": _post("Load a model", [_NAME], None, "Loaded"),
            "/v2/repository/models/{name}/unload": _post(
                "Unload a model", [_NAME], None, "Unloaded"
            ),
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Text exposition",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "V1Request": {
                    "type": "object",
                    "properties": {"instances": {"type": "array", "items": {}}},
                    "required": ["instances"],
                },
                "Parameters": {"type": "object", "additionalProperties": True},
                "RequestInput": {
                    "type": "object",
                    "required": ["name", "shape", "datatype"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {"type": "string", "enum": list(DATATYPES)},
                        "parameters": {"$ref": "#/components/schemas/Parameters"},
                        "data": {"type": "array", "items": {}},
                    },
                },
                "RequestOutput": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "parameters": {"$ref": "#/components/schemas/Parameters"},
                    },
                },
                "InferenceRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"$ref": "#/components/schemas/Parameters"},
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/RequestInput"},
                        },
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/RequestOutput"},
                        },
                    },
                },
            }
        },
    }


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>kserve-stack model server API</title></head>
<body><h1>kserve-stack model server API</h1>
<p>The machine-readable description is <a href="/openapi.json">/openapi.json</a>.</p>
<ul id="paths"></ul>
<script>
fetch('/openapi.json').then(r => r.json()).then(spec => {
  const ul = document.getElementById('paths');
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const li = document.createElement('li');
      li.textContent = method.toUpperCase() + ' ' + path + ' \\u2014 ' + (op.summary || '');
      ul.appendChild(li);
    }
  }
});
</script></body></html>
"""
