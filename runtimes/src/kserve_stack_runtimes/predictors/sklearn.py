"""The scikit-learn runtime: a joblib or pickle file; predict, or predict_proba when asked."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import joblib

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.predictors import find_model_file, input_array

EXTENSIONS = (".joblib", ".pkl", ".pickle")


def predict_proba_from_env() -> bool:
    """KServe's switch: ``PREDICT_PROBA=true`` makes the server answer class probabilities."""
    return os.environ.get("PREDICT_PROBA", "false").strip().lower() in {"1", "true", "yes"}


class SKLearnModel(Model):
    """Serves a scikit-learn estimator (or pipeline)."""

    platform = "sklearn"

    def __init__(self, name: str, model_dir: str | Path, predict_proba: bool = False) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.predict_proba = predict_proba
        self._model: Any = None

    def load(self) -> bool:
        path = find_model_file(self.model_dir, EXTENSIONS)
        if path.suffix == ".joblib":
            self._model = joblib.load(path)
        else:
            with path.open("rb") as f:
                self._model = pickle.load(f)
        if self.predict_proba and not hasattr(self._model, "predict_proba"):
            raise ValueError(f"{type(self._model).__name__} has no predict_proba.")
        self.ready = True
        return True

    def predict(self, payload: Any, headers: Headers) -> Any:
        x = input_array(payload)
        try:
            if self.predict_proba:
                return self._model.predict_proba(x)
            return self._model.predict(x)
        except (ValueError, TypeError, IndexError) as exc:
            raise InvalidInputError(f"The model rejected the input: {exc}") from None
