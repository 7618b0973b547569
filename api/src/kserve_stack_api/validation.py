"""Validate manifests of the project's kinds: parse into the typed models, or say why not.

Used by the admission webhooks, by the local mode and by the tests of every sample. Each
problem is reported with the path of the field it concerns, the way the API server does
(``spec.predictor.minReplicas: ...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from kserve_stack_api.base import ApiModel
from kserve_stack_api.crds import CRDS, GROUP


class InvalidManifestError(ValueError):
    """A manifest that does not fit its kind's schema; ``problems`` name the fields."""

    def __init__(self, kind: str, name: str | None, problems: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.problems = problems
        who = f"{kind} {name!r}" if name else kind
        super().__init__(f"{who} is invalid: " + "; ".join(problems))


def model_for(api_version: str, kind: str) -> type[ApiModel]:
    """The typed model of ``kind`` at ``api_version`` (``serving.kserve.io/vX``)."""
    group, _, version = api_version.rpartition("/")
    if group != GROUP:
        raise KeyError(f"apiVersion {api_version!r} is not in the group {GROUP}")
    for crd in CRDS:
        if crd.kind == kind:
            return crd.version(version).model
    raise KeyError(f"kserve-stack serves no kind {kind!r}")


def parse(manifest: Mapping[str, Any]) -> ApiModel:
    """Parse one manifest into its typed model, or raise InvalidManifestError."""
    kind = str(manifest.get("kind", ""))
    name = (manifest.get("metadata") or {}).get("name")
    try:
        model = model_for(str(manifest.get("apiVersion", "")), kind)
    except KeyError as err:
        raise InvalidManifestError(kind or "object", name, [str(err.args[0])]) from None
    try:
        return model.model_validate(dict(manifest))
    except ValidationError as err:
        raise InvalidManifestError(kind, name, describe(err)) from None


def describe(err: ValidationError) -> list[str]:
    """One line per problem, each starting with the dotted path of the field."""
    lines = []
    for problem in err.errors(include_url=False):
        path = _dotted(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        if ": " in message and path and not message.startswith(path):
            # An invariant's message carries the field it names relative to its object.
            field, _, rest = message.partition(": ")
            if " " not in field:
                path, message = f"{path}.{field}", rest
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _dotted(loc: Iterable[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    return ".".join(parts)
