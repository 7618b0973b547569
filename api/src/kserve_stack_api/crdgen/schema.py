"""Turn a pydantic JSON schema into a structural OpenAPI v3 schema the API server accepts.

Structural means: every node has a ``type`` (or is int-or-string / preserve-unknown), no
``$ref``, no ``anyOf`` over types, no ``additionalProperties`` beside ``properties``.
"""

from __future__ import annotations

from typing import Any

from kserve_stack_api.base import ApiModel

Schema = dict[str, Any]

# Keywords the API server accepts that we pass through unchanged.
_KEPT = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
)


def openapi_schema(model: type[ApiModel]) -> Schema:
    """The ``openAPIV3Schema`` of one CRD version, built from its top-level model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    converted = _convert(raw, defs, seen=())
    properties = converted.setdefault("properties", {})
    # The API server owns these three; keep them loose as every CRD does.
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    converted["required"] = [name for name in converted.get("required", []) if name != "metadata"]
    if not converted["required"]:
        del converted["required"]
    converted.pop("x-kubernetes-preserve-unknown-fields", None)
    return converted


def _convert(node: Schema, defs: dict[str, Schema], seen: tuple[str, ...]) -> Schema:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive type {name} cannot be a structural schema")
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, (*seen, name))

    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            inner = _convert(options[0], defs, seen)
            return _keep(rest) | inner | _keep_description(rest, inner)
        types = sorted(option.get("type", "") for option in options)
        if types == ["integer", "string"]:
            return _keep(rest) | {"x-kubernetes-int-or-string": True}
        raise ValueError(f"cannot express anyOf {types} in a structural schema")

    if "const" in node:
        return _keep(node) | {"type": _json_type(node["const"]), "enum": [node["const"]]}

    kind = node.get("type")
    out = _keep(node)
    if kind is None:
        # Any: a value of any JSON type, stored as given.
        out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    out["type"] = kind
    if kind == "array":
        out["items"] = _convert(node.get("items", {}), defs, seen)
    elif kind == "object":
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            out["properties"] = {
                name: _convert(child, defs, seen) for name, child in properties.items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        if isinstance(extra, dict) and extra:
            if properties:
                raise ValueError("an object cannot have both properties and a value schema")
            out["additionalProperties"] = _convert(extra, defs, seen)
        elif (extra is True or extra == {} or not properties) and extra is not False:
            # An open object (dict[str, Any] or a model that keeps unknown fields).
            out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _keep(node: Schema) -> Schema:
    return {key: node[key] for key in _KEPT if key in node}


def _keep_description(outer: Schema, inner: Schema) -> Schema:
    # A field's own description wins over its type's docstring.
    if "description" in outer:
        return {"description": outer["description"]}
    return {"description": inner["description"]} if "description" in inner else {}


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
