"""Every sample the project ships parses into its typed model and fits the generated CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kserve_stack_api.crdgen.schema import openapi_schema
from kserve_stack_api.validation import model_for, parse

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def test_there_are_samples_of_every_kind() -> None:
    kinds = {
        yaml.safe_load_all(path.read_text()).__next__()["kind"] for path in SAMPLES.rglob("*.yaml")
    }
    assert kinds == {
        "InferenceService",
        "ServingRuntime",
        "ClusterServingRuntime",
        "InferenceGraph",
        "LLMInferenceService",
        "LLMInferenceServiceConfig",
    }


def test_sample_parses_into_its_model(sample: dict[str, Any]) -> None:
    model = parse(sample)
    assert model.to_wire()["metadata"]["name"] == sample["metadata"]["name"]


def test_sample_fits_the_generated_schema(sample: dict[str, Any]) -> None:
    schema = openapi_schema(model_for(sample["apiVersion"], sample["kind"]))
    jsonschema.validate(sample, schema)


def test_wire_form_round_trips(sample: dict[str, Any]) -> None:
    wire = parse(sample).to_wire()
    assert parse(wire).to_wire() == wire
