"""Field compatibility with KServe: every field we serve exists in KServe's own CRDs, and
every sample we ship is also a valid KServe manifest (checked against KServe's schemas)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kserve_stack_api.crdgen.render import crd_document, file_name
from kserve_stack_api.crds import CRDS, CrdDefinition

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "crds" / "reference-kserve"

pytestmark = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"KServe's reference CRDs are not at {REFERENCE}"
)


@functools.cache
def reference_schema(crd: CrdDefinition, version: str) -> dict[str, Any]:
    doc = yaml.load((REFERENCE / file_name(crd)).read_text(), Loader=yaml.CSafeLoader)
    for entry in doc["spec"]["versions"]:
        if entry["name"] == version:
            return entry["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]
    raise AssertionError(f"KServe serves no {crd.kind} {version}")


def paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    found = {prefix}
    for name, child in node.get("properties", {}).items():
        found |= paths(child, f"{prefix}.{name}")
    if isinstance(node.get("items"), dict):
        found |= paths(node["items"], f"{prefix}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found |= paths(node["additionalProperties"], f"{prefix}{{}}")
    return found


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c.kind)
def test_every_field_we_serve_exists_in_kserve(crd: CrdDefinition) -> None:
    for version in crd_document(crd)["spec"]["versions"]:
        ours = paths(version["schema"]["openAPIV3Schema"])
        theirs = paths(reference_schema(crd, version["name"]))
        invented = sorted(p for p in ours - theirs if not p.startswith(".metadata"))
        assert invented == [], f"{crd.kind} {version['name']} fields KServe lacks: {invented}"


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c.kind)
def test_versions_and_names_match_kserve(crd: CrdDefinition) -> None:
    ours = crd_document(crd)["spec"]
    theirs = yaml.load((REFERENCE / file_name(crd)).read_text(), Loader=yaml.CSafeLoader)["spec"]
    assert [v["name"] for v in ours["versions"]] == [v["name"] for v in theirs["versions"]]
    assert [v["storage"] for v in ours["versions"]] == [v["storage"] for v in theirs["versions"]]
    assert ours["names"]["plural"] == theirs["names"]["plural"]
    assert ours["scope"] == theirs["scope"]
    assert set(theirs["names"].get("shortNames", [])) <= set(ours["names"].get("shortNames", []))


@functools.cache
def reference_validator(crd: CrdDefinition, version: str) -> jsonschema.protocols.Validator:
    # jsonschema.validate() would re-check KServe's 2 MB schema against the metaschema each call.
    return jsonschema.Draft202012Validator(reference_schema(crd, version))


def test_every_sample_is_a_valid_kserve_manifest(sample: dict[str, Any]) -> None:
    group_version = sample["apiVersion"].rsplit("/", 1)[-1]
    crd = next(c for c in CRDS if c.kind == sample["kind"])
    reference_validator(crd, group_version).validate(sample)
