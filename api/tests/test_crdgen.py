"""The generator writes structural CRDs, and `--check` catches drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kserve_stack_api.crdgen.__main__ import main
from kserve_stack_api.crdgen.render import crd_document, drift, file_name, write_all
from kserve_stack_api.crdgen.schema import openapi_schema
from kserve_stack_api.crds import CRDS, CrdDefinition
from kserve_stack_api.inferenceservice import InferenceService

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "charts" / "kserve-stack" / "files" / "crds"


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def crd_ids(crd: CrdDefinition) -> str:
    return crd.kind


@pytest.mark.parametrize("crd", CRDS, ids=crd_ids)
def test_every_schema_node_is_structural(crd: CrdDefinition) -> None:
    for version in crd.versions:
        for path, node in walk(openapi_schema(version.model)):
            assert not {"$ref", "anyOf", "allOf", "oneOf", "$defs", "title", "const"} & set(node), (
                path
            )
            typed = "type" in node
            loose = node.get("x-kubernetes-int-or-string") or node.get(
                "x-kubernetes-preserve-unknown-fields"
            )
            assert typed or loose, f"{crd.kind} {version.name}{path} has no type"
            assert not ("properties" in node and "additionalProperties" in node), path
            assert "default" not in node, f"{path}: defaults belong to the webhook"


@pytest.mark.parametrize("crd", CRDS, ids=crd_ids)
def test_document_has_names_status_and_columns(crd: CrdDefinition) -> None:
    doc = crd_document(crd)
    assert doc["metadata"]["name"] == f"{crd.plural}.serving.kserve.io"
    versions = doc["spec"]["versions"]
    assert sum(v["storage"] for v in versions) == 1
    for version in versions:
        assert version["subresources"] == {"status": {}}
        assert any(c["name"] == "Age" for c in version["additionalPrinterColumns"])


def test_short_names_and_scopes() -> None:
    names = {crd.kind: crd_document(crd)["spec"] for crd in CRDS}
    assert names["InferenceService"]["names"]["shortNames"] == ["isvc"]
    assert names["InferenceGraph"]["names"]["shortNames"] == ["ig"]
    assert names["LLMInferenceService"]["names"]["shortNames"] == ["llmisvc"]
    assert names["ClusterServingRuntime"]["scope"] == "Cluster"
    llm_versions = [v["name"] for v in names["LLMInferenceService"]["versions"]]
    assert llm_versions == ["v1alpha1", "v1alpha2"]


def test_invariants_become_cel_rules_with_field_paths() -> None:
    graph = crd_document(next(c for c in CRDS if c.kind == "InferenceGraph"))
    spec = graph["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    router = spec["properties"]["nodes"]["additionalProperties"]
    rules = {r["message"]: r for r in router["x-kubernetes-validations"]}
    splitter = rules["the weights of a Splitter's steps must sum to 100"]
    assert splitter["fieldPath"] == ".steps"
    assert ".sum() == 100" in splitter["rule"]
    assert spec["properties"]["nodes"]["maxProperties"] > 0  # bounds the CEL cost


def test_core_types_keep_unknown_fields_but_our_types_do_not() -> None:
    schema = openapi_schema(InferenceService)
    predictor = schema["properties"]["spec"]["properties"]["predictor"]
    assert "x-kubernetes-preserve-unknown-fields" not in predictor
    container = predictor["properties"]["containers"]["items"]
    assert container["x-kubernetes-preserve-unknown-fields"] is True
    limits = container["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"x-kubernetes-int-or-string": True}


def test_committed_crds_match_the_models() -> None:
    assert drift(COMMITTED) == [], "run `make generate`"


def test_drift_names_changed_missing_and_stale_files(tmp_path: Path) -> None:
    write_all(tmp_path)
    assert drift(tmp_path) == []
    first = file_name(CRDS[0])
    (tmp_path / first).write_text("# edited by hand\n")
    (tmp_path / "serving.kserve.io_old.yaml").write_text("{}\n")
    (tmp_path / "kustomization.yaml").unlink()
    assert drift(tmp_path) == sorted([first, "kustomization.yaml", "serving.kserve.io_old.yaml"])


def test_cli_check_fails_on_drift_and_passes_after_generate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert "make generate" in capsys.readouterr().err
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert len(kustomization["resources"]) == len(CRDS)
