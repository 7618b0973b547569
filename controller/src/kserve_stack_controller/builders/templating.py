"""KServe's Go-template arguments (``{{.Name}}``, ``{{ .Namespace }}``, ``{{.Labels.KEY}}``,
``{{.Annotations.KEY}}``, ``{{ .IngressDomain }}``) substituted without a template engine:
only field references are allowed, and an unknown one is an error that names it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kserve_stack_controller.errors import InvalidSpecError

_FIELD = re.compile(r"\{\{\s*\.([A-Za-z]+)(?:\.([A-Za-z0-9_./-]+))?\s*\}\}")


@dataclass(frozen=True)
class TemplateArgs:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ingress_domain: str = ""


def render(text: str, args: TemplateArgs, where: str = "template") -> str:
    """``text`` with every ``{{ .Field }}`` replaced; raise InvalidSpecError for others."""

    def one(match: re.Match[str]) -> str:
        head, key = match.group(1), match.group(2)
        if key is None:
            scalars = {
                "Name": args.name,
                "Namespace": args.namespace,
                "IngressDomain": args.ingress_domain,
            }
            if head in scalars:
                return scalars[head]
        elif head in ("Labels", "Annotations"):
            source = args.labels if head == "Labels" else args.annotations
            if key in source:
                return source[key]
            raise InvalidSpecError(
                f"{where}: {match.group(0)} names {head.lower()[:-1]} "
                f"{key!r}, which the InferenceService does not have"
            )
        raise InvalidSpecError(f"{where}: unknown template field {match.group(0)}")

    rendered = _FIELD.sub(one, text)
    if "{{" in rendered:
        raise InvalidSpecError(
            f"{where}: unsupported template in {text!r}; only "
            "{{.Name}}, {{.Namespace}}, {{.IngressDomain}}, "
            "{{.Labels.KEY}} and {{.Annotations.KEY}} are substituted"
        )
    return rendered
