"""A tiny scikit-learn iris classifier, trained here (no download), for the quickstart."""

from __future__ import annotations

import importlib
from pathlib import Path

from kserve_stack_controller.local.plan import LocalModeError


def write_sample_model(out: Path) -> Path:
    """Train a small iris classifier and save it as ``out/model.joblib``."""
    try:
        datasets = importlib.import_module("sklearn.datasets")
        tree = importlib.import_module("sklearn.tree")
        joblib = importlib.import_module("joblib")
    except ImportError:
        raise LocalModeError(
            "scikit-learn is not installed here: install kserve-stack-runtimes "
            "(uv sync --all-packages)"
        ) from None
    features, labels = datasets.load_iris(return_X_y=True)  # ships with scikit-learn
    model = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, labels)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.joblib"
    joblib.dump(model, path)
    return path
