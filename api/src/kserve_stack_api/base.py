"""Building blocks shared by every API model: the camelCase wire format and invariants.

Every CRD field is declared once, here in Python; the CRD schemas, the admission webhooks and
the controller all read these models. An *invariant* is a rule that spans fields: it is
written once as a CEL expression (which the API server enforces) together with a Python
predicate (which the webhooks, the local mode and the unit tests enforce) and one message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


@dataclass(frozen=True)
class Invariant:
    """A cross-field rule: ``cel`` for the API server, ``check`` for Python, one message.

    ``field`` is the path (relative to the object the rule sits on) that the message names;
    it becomes the CEL ``fieldPath`` so both sides report the same field.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field: str | None = None


class ApiModel(BaseModel):
    """Base of every typed API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    #: Cross-field rules enforced by both the API server (CEL) and Python.
    invariants: ClassVar[tuple[Invariant, ...]] = ()

    @model_validator(mode="after")
    def _check_invariants(self) -> ApiModel:
        for rule in type(self).invariants:
            if not rule.check(self):
                prefix = f"{rule.field}: " if rule.field else ""
                raise ValueError(f"{prefix}{rule.message}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The CRD generator reads these: CEL rules, and whether unknown fields are kept.
        json_schema = handler(core_schema)
        target = handler.resolve_ref_schema(json_schema)
        rules = [_cel_rule(rule) for rule in cls.invariants if rule.check is not None]
        if rules:
            target["x-kubernetes-validations"] = rules
        if cls.model_config.get("extra") == "allow":
            target["x-kubernetes-preserve-unknown-fields"] = True
        return json_schema

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OpenModel(ApiModel):
    """A Kubernetes core type we type only in part: known fields are checked, the rest kept.

    Pod-level types (Container, Volume, Affinity, ...) are validated in full by the API
    server when the controller creates the Deployment; duplicating their 2 MB of schema in
    every CRD (as KServe does) buys nothing and makes ``kubectl apply`` refuse the CRDs.
    """

    model_config = ConfigDict(extra="allow")


def _cel_rule(rule: Invariant) -> dict[str, str]:
    cel = {"rule": rule.cel, "message": rule.message}
    if rule.field:
        cel["fieldPath"] = "." + rule.field
    return cel
