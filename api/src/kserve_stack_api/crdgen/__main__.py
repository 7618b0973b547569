"""``kserve-stack-crdgen``: write (or check) the CRD YAML generated from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kserve_stack_api.crdgen.render import drift, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kserve-stack-crdgen",
        description="Generate the serving.kserve.io CRDs from the typed models in "
        "kserve-stack-api. The output directory is the one place the chart and the "
        "kustomize overlays read them from.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory to write one YAML file per CRD into (plus a kustomization.yaml)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files that differ from the models",
    )
    args = parser.parse_args(argv)
    if args.check:
        changed = drift(args.out)
        if changed:
            print(
                f"generated CRDs in {args.out} are out of date: {', '.join(changed)}\n"
                "run `make generate` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"CRDs in {args.out} match the models")
        return 0
    for path in write_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
